//! A stored response: status, headers and body in a compact binary form.
//!
//! ```text
//! version (1) | status (u16) | stored at, Unix ms (u64) | header count (u16)
//! | per header: name length (u16) name, value length (u32) value | body (the rest)
//! ```
//!
//! Integers are big-endian. A value that does not decode (another version, truncated) is a miss.

const VERSION: u8 = 1;

/// A response as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: u16,
    pub stored_at_ms: u64,
    /// Lower-case names, in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Entry {
    /// The encoded size, without encoding.
    pub fn encoded_len(headers: &[(String, String)], body_len: usize) -> usize {
        1 + 2
            + 8
            + 2
            + headers
                .iter()
                .map(|(n, v)| 2 + n.len() + 4 + v.len())
                .sum::<usize>()
            + body_len
    }

    /// Encodes the entry; `None` if a header is too large for the format (never in practice:
    /// names up to 64 KiB, values up to 4 GiB, 65535 headers).
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(Self::encoded_len(&self.headers, self.body.len()));
        out.push(VERSION);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.stored_at_ms.to_be_bytes());
        out.extend_from_slice(&u16::try_from(self.headers.len()).ok()?.to_be_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(&u16::try_from(name.len()).ok()?.to_be_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&u32::try_from(value.len()).ok()?.to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(&self.body);
        Some(out)
    }

    /// Decodes what [`Entry::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let mut r = Reader(bytes);
        if r.take(1)?[0] != VERSION {
            return None;
        }
        let status = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
        let stored_at_ms = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let count = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
        let mut headers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let n = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
            let name = std::str::from_utf8(r.take(usize::from(n))?)
                .ok()?
                .to_owned();
            let v = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
            let value = std::str::from_utf8(r.take(v as usize)?).ok()?.to_owned();
            headers.push((name, value));
        }
        Some(Entry {
            status,
            stored_at_ms,
            headers,
            body: r.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            status: 200,
            stored_at_ms: 1_700_000_000_123,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-multi".into(), "a".into()),
                ("x-multi".into(), "b, c".into()),
                ("x-empty".into(), String::new()),
            ],
            body: b"{\"a\":1}\x00\xff".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let e = entry();
        let bytes = e.encode().unwrap();
        assert_eq!(bytes.len(), Entry::encoded_len(&e.headers, e.body.len()));
        assert_eq!(Entry::decode(&bytes), Some(e));
        let empty = Entry {
            status: 204,
            stored_at_ms: 0,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(Entry::decode(&empty.encode().unwrap()), Some(empty));
    }

    #[test]
    fn is_compact() {
        let e = entry();
        let payload: usize = e
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
            + e.body.len();
        assert_eq!(
            e.encode().unwrap().len() - payload,
            13 + 6 * e.headers.len()
        );
    }

    #[test]
    fn refuses_garbage() {
        let bytes = entry().encode().unwrap();
        for cut in 0..20 {
            assert_eq!(Entry::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[0] = 2;
        assert_eq!(Entry::decode(&other), None);
        assert_eq!(Entry::decode(b""), None);
    }
}
