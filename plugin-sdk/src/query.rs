//! Query strings: parse the raw query (`a=1&b=two%20words`) into decoded pairs, change them,
//! and write them back. Pairs that are not changed keep their original encoding.
//!
//! ```ignore
//! use wicket_plugin_sdk::query::Query;
//!
//! let mut q = Query::parse(req.query().as_deref().unwrap_or(""));
//! if q.get("limit").is_none() { q.set("limit", "10"); }
//! req.set_query(q.to_query_string().as_deref());
//! ```

/// One `name=value` pair: decoded, and as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    name: String,
    value: String,
    raw: String,
}

/// A parsed query string: an ordered list of pairs, names possibly repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<Pair>,
}

impl Query {
    /// Parses a raw query string (without the `?`). `+` and `%XX` are decoded; empty
    /// segments (`a=1&&b=2`) are skipped; a name without `=` has the value `""`.
    pub fn parse(raw: &str) -> Self {
        let pairs = raw
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|segment| {
                let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
                Pair {
                    name: decode(name),
                    value: decode(value),
                    raw: segment.to_owned(),
                }
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.value.as_str())
            .collect()
    }

    /// Whether `name` is present (with any value, even empty).
    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|p| p.name == name)
    }

    /// The decoded pairs, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.pairs.retain(|p| p.name != name);
    }

    /// Replaces every value of `name` with `value` (added at the end when absent; the first
    /// occurrence keeps its place otherwise).
    pub fn set(&mut self, name: &str, value: &str) {
        let pair = Pair {
            name: name.to_owned(),
            value: value.to_owned(),
            raw: format!("{}={}", encode(name), encode(value)),
        };
        match self.pairs.iter().position(|p| p.name == name) {
            Some(i) => {
                self.pairs[i] = pair;
                let mut seen = 0;
                self.pairs.retain(|p| {
                    if p.name != name {
                        return true;
                    }
                    seen += 1;
                    seen == 1
                });
            }
            None => self.pairs.push(pair),
        }
    }

    /// Adds a value to `name`, keeping the others.
    pub fn append(&mut self, name: &str, value: &str) {
        self.pairs.push(Pair {
            name: name.to_owned(),
            value: value.to_owned(),
            raw: format!("{}={}", encode(name), encode(value)),
        });
    }

    /// Renames every `from` pair to `to`, keeping values and places. Pairs already named `to`
    /// are replaced.
    pub fn rename(&mut self, from: &str, to: &str) {
        if from == to || !self.contains(from) {
            return;
        }
        self.remove(to);
        for p in self.pairs.iter_mut().filter(|p| p.name == from) {
            let raw_value = p.raw.split_once('=').map(|(_, v)| v);
            p.raw = match raw_value {
                Some(v) => format!("{}={v}", encode(to)),
                None => encode(to),
            };
            p.name = to.to_owned();
        }
    }

    /// The query string (without `?`); `None` when there are no pairs, so that
    /// `req.set_query(q.to_query_string().as_deref())` drops an emptied query.
    pub fn to_query_string(&self) -> Option<String> {
        if self.pairs.is_empty() {
            return None;
        }
        let parts: Vec<&str> = self.pairs.iter().map(|p| p.raw.as_str()).collect();
        Some(parts.join("&"))
    }
}

/// Percent-decodes a query component: `+` is a space, `%XX` a byte; invalid escapes are kept
/// as they are and invalid UTF-8 becomes U+FFFD.
pub fn decode(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a query component: everything but ASCII letters, digits and `-._~` is
/// escaped (a space becomes `%20`).
pub fn encode(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for b in component.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let q = Query::parse("a=1&b=two%20words&a=3&&flag&c=x+y&bad=%zz%4");
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get_all("a"), ["1", "3"]);
        assert_eq!(q.get("b"), Some("two words"));
        assert_eq!(q.get("flag"), Some(""));
        assert!(q.contains("flag"));
        assert_eq!(q.get("c"), Some("x y"));
        assert_eq!(q.get("bad"), Some("%zz%4"));
        assert_eq!(q.get("nope"), None);
        assert_eq!(decode("%C3%A9%2"), "é%2");
        assert!(Query::parse("").is_empty());
    }

    #[test]
    fn untouched_pairs_keep_their_encoding() {
        let q = Query::parse("a=1&b=two%20words&c=x+y");
        assert_eq!(
            q.to_query_string().as_deref(),
            Some("a=1&b=two%20words&c=x+y")
        );
    }

    #[test]
    fn edits() {
        let mut q = Query::parse("a=1&b=2&a=3&old=v%20w");
        q.set("a", "x y&z");
        assert_eq!(
            q.to_query_string().as_deref(),
            Some("a=x%20y%26z&b=2&old=v%20w")
        );
        q.rename("old", "new name");
        assert_eq!(q.get("new name"), Some("v w"));
        assert_eq!(
            q.to_query_string().as_deref(),
            Some("a=x%20y%26z&b=2&new%20name=v%20w")
        );
        q.remove("b");
        q.append("z", "é");
        assert_eq!(
            q.to_query_string().as_deref(),
            Some("a=x%20y%26z&new%20name=v%20w&z=%C3%A9")
        );
        q.rename("z", "a");
        assert_eq!(q.get_all("a"), ["é"]);
        q.remove("a");
        q.remove("new name");
        assert_eq!(q.to_query_string(), None);
    }
}
