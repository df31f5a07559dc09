//! The SigV4 canonical request: URI encoding, the canonical path (normalized and double-encoded
//! for most services, as sent for S3), the canonical query string and the canonical headers.
//! Pure functions over what the request holds, so the AWS test suite's raw cases (a space in the
//! path, folded header lines) can be checked here even though no HTTP server would accept them.

/// SigV4's URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`)
/// becomes `%XY` with upper-case hex.
pub fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

/// Percent-decodes `s` to bytes. `+` stays a plus (SigV4 query strings are not form
/// encoded); a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// RFC 3986 `remove_dot_segments` plus the collapsing of empty segments, as AWS signers
/// normalize paths: `//a/./b/../c/` becomes `/a/c/`.
pub fn normalize_path(path: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/') {
        trailing_slash = false;
        match segment {
            "" | "." => trailing_slash = true,
            ".." => {
                stack.pop();
                trailing_slash = true;
            }
            s => stack.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// The canonical URI of `path` (as received, percent-encoding kept).
///
/// * `double_encode` (every service but S3): the path (normalized first when `normalize`) is
///   URI-encoded once more, so `%20` on the wire signs as `%2520`.
/// * otherwise (S3): the path as sent; bytes that should have been encoded are encoded.
pub fn canonical_uri(path: &str, normalize: bool, double_encode: bool) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let path = if normalize {
        normalize_path(path)
    } else {
        path.to_owned()
    };
    let mut out = String::with_capacity(path.len() + 8);
    if double_encode {
        uri_encode(path.as_bytes(), true, &mut out);
    } else {
        for chunk in path.split_inclusive('%') {
            // `%` itself is kept: the sender encoded what it had to.
            let (text, pct) = match chunk.strip_suffix('%') {
                Some(t) => (t, true),
                None => (chunk, false),
            };
            uri_encode(text.as_bytes(), true, &mut out);
            if pct {
                out.push('%');
            }
        }
    }
    out
}

/// The canonical query string of the raw query `query`: each `name=value` pair decoded and
/// re-encoded, sorted by name then value, joined with `&`. With `skip_signature`, the
/// `X-Amz-Signature` parameter (of a presigned URL) is left out.
pub fn canonical_query(query: Option<&str>, skip_signature: bool) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode(name);
        if skip_signature && name == b"X-Amz-Signature" {
            continue;
        }
        let mut n = String::with_capacity(name.len());
        uri_encode(&name, false, &mut n);
        let mut v = String::with_capacity(value.len());
        uri_encode(&percent_decode(value), false, &mut v);
        pairs.push((n, v));
    }
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A header value as signed: trimmed, each run of spaces and tabs inside (folded lines
/// included) made one space.
pub fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The canonical headers block (`name:value\n` for each signed header, values of a repeated
/// header joined with `,` in the order received). `values(name)` gives the values of a
/// header; a signed header with no value is an error naming it.
pub fn canonical_headers<F>(signed: &[&str], mut values: F) -> Result<String, String>
where
    F: FnMut(&str) -> Vec<String>,
{
    let mut out = String::new();
    for name in signed {
        let vals = values(name);
        if vals.is_empty() {
            return Err((*name).to_owned());
        }
        out.push_str(name);
        out.push(':');
        for (i, v) in vals.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&trim_all(v));
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_aws() {
        let mut s = String::new();
        uri_encode("a b/c~-_.ሴ+=&%".as_bytes(), true, &mut s);
        assert_eq!(s, "a%20b/c~-_.%E1%88%B4%2B%3D%26%25");
        let mut s = String::new();
        uri_encode(b"a/b", false, &mut s);
        assert_eq!(s, "a%2Fb");
    }

    #[test]
    fn decodes_percent_escapes_only() {
        assert_eq!(percent_decode("a%20b+c%2Bd"), b"a b+c+d");
        assert_eq!(percent_decode("%E1%88%b4"), "ሴ".as_bytes());
        assert_eq!(percent_decode("100%"), b"100%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%zz%41"), b"%zzA");
    }

    #[test]
    fn normalizes_paths() {
        for (raw, normal) in [
            ("/", "/"),
            ("", "/"),
            ("//example//", "/example/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./", "/"),
            ("/./example", "/example"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/.", "/a/b/"),
            ("/../a", "/a"),
            ("/a%2F..", "/a%2F.."),
        ] {
            assert_eq!(normalize_path(raw), normal, "{raw}");
        }
    }

    #[test]
    fn canonical_uris() {
        assert_eq!(
            canonical_uri("/example space/", true, true),
            "/example%20space/"
        );
        assert_eq!(canonical_uri("/a%20b", true, true), "/a%2520b");
        assert_eq!(canonical_uri("//a//", true, true), "/a/");
        assert_eq!(canonical_uri("//a//", false, true), "//a//");
        // S3: as sent.
        assert_eq!(canonical_uri("/a%2Fb", false, false), "/a%2Fb");
        assert_eq!(canonical_uri("/test$file", false, false), "/test%24file");
        assert_eq!(canonical_uri("/a/./b/../c", false, false), "/a/./b/../c");
        assert_eq!(canonical_uri("", false, false), "/");
    }

    #[test]
    fn canonical_queries() {
        assert_eq!(canonical_query(None, false), "");
        assert_eq!(canonical_query(Some(""), false), "");
        assert_eq!(
            canonical_query(Some("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"), false),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(canonical_query(Some("c+d"), false), "c%2Bd=");
        assert_eq!(canonical_query(Some("a=2&a=1&b="), false), "a=1&a=2&b=");
        assert_eq!(canonical_query(Some("x=a%2fb&&y"), false), "x=a%2Fb&y=");
        assert_eq!(
            canonical_query(Some("X-Amz-Signature=abc&X-Amz-Date=1"), true),
            "X-Amz-Date=1"
        );
        assert_eq!(
            canonical_query(Some("X-Amz-Signature=abc"), false),
            "X-Amz-Signature=abc"
        );
    }

    #[test]
    fn trims_header_values() {
        assert_eq!(trim_all("  a   b \t c  "), "a b c");
        assert_eq!(
            trim_all("value1\r\n  value2\r\n     value3"),
            "value1 value2 value3"
        );
        assert_eq!(trim_all("\"a   b   c\""), "\"a b c\"");
        assert_eq!(trim_all(""), "");
    }

    #[test]
    fn canonical_header_block() {
        let block = canonical_headers(&["host", "my-header1"], |n| match n {
            "host" => vec!["example.amazonaws.com".into()],
            _ => vec!["value2".into(), " value2 ".into(), "value1".into()],
        })
        .unwrap();
        assert_eq!(
            block,
            "host:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
        );
        assert_eq!(
            canonical_headers(&["host", "x-gone"], |n| if n == "host" {
                vec!["h".into()]
            } else {
                vec![]
            }),
            Err("x-gone".to_owned())
        );
    }
}
