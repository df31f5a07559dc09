//! The AWS SigV4 test suite's request files (`tests/vectors/sigv4/v4/*/request.txt` and the
//! signed forms), parsed as written: request line, headers with folded lines kept, body. For
//! tests only (cargo feature `suite`): the suite has requests no HTTP parser would accept.

/// A request as the suite writes it.
#[derive(Debug, Clone)]
pub struct Raw {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Names as written (any case), values as written (folded lines joined with `\n`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    /// Parses one request file. Panics on a file that is not one: test input.
    pub fn parse(text: &str) -> Raw {
        let (head, body) = match text.split_once("\n\n") {
            Some((h, b)) => (h, b),
            None => (text.trim_end_matches('\n'), ""),
        };
        let mut lines = head.split('\n');
        let line = lines.next().expect("a request line");
        let (method, rest) = line.split_once(' ').expect("METHOD TARGET VERSION");
        let (target, _version) = rest.rsplit_once(' ').expect("METHOD TARGET VERSION");
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // A folded line continues the previous value.
                let last = headers.last_mut().expect("a header before a folded line");
                last.1.push('\n');
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("NAME:VALUE");
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        Raw {
            method: method.to_owned(),
            path,
            query,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// Every value of `name` (any case), in order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Replaces every value of `name` with `value`.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}
