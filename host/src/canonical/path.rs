//! The canonical request path (RFC 3986 §6.2.2 syntax-based normalization, §5.2.4 dot
//! segments), computed once before routing.
//!
//! What changes:
//! * `%XX` escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded (`/adm%69n`
//!   is `/admin`, `%2e%2E` is `..`); every other escape is kept with its hex in upper case
//!   (`%3b` becomes `%3B`), and raw bytes that may not appear in a path (non-ASCII, `"`,
//!   `<`, `{` ...) are percent-encoded, so two spellings of one path become one string;
//! * dot segments are removed (`/a/./b/../c` is `/a/c`);
//! * repeated slashes are merged (`/v1//admin` is `/v1/admin`) unless `merge_slashes` is off.
//!
//! What is refused, because some upstream reads it differently from the router:
//! * an encoded `/`, `\` or NUL (`%2F`, `%5C`, `%00` in any case): nginx decodes `..%2Fadmin`
//!   into two segments, the router would see one;
//! * any other encoded control character (`%09`, `%0A`, `%7F`): upstreams that trim them see
//!   another path;
//! * a double-encoded `.`, `/`, `\` or NUL (`%252e`, `%252F` ...): upstreams that decode twice
//!   see a dot segment or separator the router did not;
//! * a raw backslash, which Windows servers and some frameworks read as `/`;
//! * a `..` that climbs above the root (`/..`, `/a/../..`);
//! * a malformed escape (`%`, `%4`, `%zz`);
//! * a `;` in a segment unless `path_semicolons = "literal"`: Tomcat and Spring strip
//!   `;params` (`/v1/admin;x=1` is their `/v1/admin`), so by default it is refused. An
//!   encoded `%3B` is kept: those upstreams decode it after stripping, into a literal `;`.
//!
//! A trailing slash is kept (`/v1/admin/` stays so; upstreams that redirect to add one
//! would loop if it were dropped) but does not change which route matches: see the router.
//! Letter case is kept and matching is case-sensitive, as in API Gateway.

use std::fmt::Write;

/// How `;` in a path segment is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semicolons {
    /// 400: some upstreams read `;x=1` as a matrix parameter and drop it.
    Reject,
    /// An ordinary character, matched and forwarded as it is. Only safe when no upstream
    /// behind the gateway strips matrix parameters.
    Literal,
}

/// The `[server]` settings that shape the canonical path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    pub merge_slashes: bool,
    pub semicolons: Semicolons,
}

impl Default for PathRules {
    fn default() -> Self {
        PathRules {
            merge_slashes: true,
            semicolons: Semicolons::Reject,
        }
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("malformed percent-escape in the path")]
    BadEscape,
    #[error("encoded {0} in the path")]
    EncodedForbidden(&'static str),
    #[error("double-encoded {0} in the path")]
    DoubleEncoded(&'static str),
    #[error("backslash in the path")]
    Backslash,
    #[error("'..' climbs above the root of the path")]
    AboveRoot,
    #[error("';' in the path (refused: `path_semicolons`)")]
    Semicolon,
}

/// The canonical form of `raw` (the request's path, without query), or why it has none.
pub fn canonical_path(raw: &str, rules: PathRules) -> Result<String, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len() - 1;
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let seg = canonical_segment(part, rules)?;
        match seg.as_str() {
            "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            "" if rules.merge_slashes && i != last => continue,
            _ => {
                out.push(seg);
                continue;
            }
        }
        // A dot segment at the end leaves the path ending in '/' (`/a/b/..` is `/a/`).
        if i == last {
            out.push(String::new());
        }
    }
    let mut path = String::with_capacity(raw.len());
    for seg in &out {
        path.push('/');
        path.push_str(seg);
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// One segment in canonical form: unreserved escapes decoded, other escapes in upper case,
/// characters a path may not hold raw encoded. Dot segments are left to the caller.
pub fn canonical_segment(raw: &str, rules: PathRules) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|h| hex(*h));
                let lo = bytes.get(i + 2).and_then(|h| hex(*h));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadEscape);
                };
                let v = hi << 4 | lo;
                if let Some(name) = forbidden_encoded(v) {
                    return Err(PathError::EncodedForbidden(name));
                }
                if is_unreserved(v) {
                    out.push(v as char);
                } else {
                    push_escape(&mut out, v);
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' if rules.semicolons == Semicolons::Reject => return Err(PathError::Semicolon),
            _ if is_pchar(b) => out.push(b as char),
            _ => push_escape(&mut out, b),
        }
        i += 1;
    }
    // Checked on the result: `%25%32%65` becomes `%252e` only once `%32` and `%65` are decoded.
    if let Some(name) = double_encoded(&out) {
        return Err(PathError::DoubleEncoded(name));
    }
    Ok(out)
}

/// Bytes that may not appear encoded at all, with the name used in the error.
fn forbidden_encoded(v: u8) -> Option<&'static str> {
    match v {
        b'/' => Some("'/'"),
        b'\\' => Some("'\\'"),
        0 => Some("NUL"),
        0x01..=0x1f | 0x7f => Some("control character"),
        _ => None,
    }
}

/// `%25` followed by the hex of a byte that `forbidden_encoded` refuses or of a `.`.
fn double_encoded(seg: &str) -> Option<&'static str> {
    let bytes = seg.as_bytes();
    let mut at = 0;
    while let Some(pos) = seg[at..].find("%25") {
        let i = at + pos + 3;
        if let (Some(hi), Some(lo)) = (
            bytes.get(i).and_then(|h| hex(*h)),
            bytes.get(i + 1).and_then(|h| hex(*h)),
        ) {
            let v = hi << 4 | lo;
            if v == b'.' {
                return Some("'.'");
            }
            if let Some(name) = forbidden_encoded(v) {
                return Some(name);
            }
        }
        at = i;
    }
    None
}

fn push_escape(out: &mut String, b: u8) {
    let _ = write!(out, "%{b:02X}");
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 unreserved: decoding these never changes a URI's meaning.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` less `%`: what a path segment may hold without encoding.
fn is_pchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> Result<String, PathError> {
        canonical_path(raw, PathRules::default())
    }

    fn keep_slashes(raw: &str) -> Result<String, PathError> {
        let rules = PathRules {
            merge_slashes: false,
            ..PathRules::default()
        };
        canonical_path(raw, rules)
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/v1/admin",
            "/v1/pets/7",
            "/a/b/",
            "/~x/a-b_c.d",
            "/a:b@c!$&'()*+,=",
        ] {
            assert_eq!(canon(p).as_deref(), Ok(p), "{p}");
        }
    }

    #[test]
    fn the_reported_tricks_become_the_protected_path() {
        for raw in [
            "/v1/pets/../admin",
            "/v1/./admin",
            "/v1/pets/%2e%2e/admin",
            "/v1/pets/%2E%2e/admin",
            "/v1/pets/.%2e/admin",
            "/v1/pets/%2e./admin",
            "/v1/adm%69n",
            "/v1/adm%69%6E",
            "/%76%31/admin",
            "/v1//admin",
            "//v1///admin",
            "/v1/x/../../v1/admin",
            "/v1/admin/./../admin",
            "/v1/%2e/admin",
        ] {
            assert_eq!(canon(raw).as_deref(), Ok("/v1/admin"), "{raw}");
        }
        // A trailing slash is kept; the router matches it as the same route.
        assert_eq!(canon("/v1/admin/.").as_deref(), Ok("/v1/admin/"));
        assert_eq!(canon("/v1/admin/x/..").as_deref(), Ok("/v1/admin/"));
        assert_eq!(canon("/v1/admin//").as_deref(), Ok("/v1/admin/"));
        assert_eq!(canon("/a/..").as_deref(), Ok("/"));
        assert_eq!(canon("/./").as_deref(), Ok("/"));
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        use PathError::*;
        let cases: &[(&str, PathError)] = &[
            ("/v1/pets/..%2Fadmin", EncodedForbidden("'/'")),
            ("/v1/pets/..%2fadmin", EncodedForbidden("'/'")),
            ("/v1%2fadmin", EncodedForbidden("'/'")),
            ("/v1/pets/..%5Cadmin", EncodedForbidden("'\\'")),
            ("/v1/admin%00", EncodedForbidden("NUL")),
            ("/v1/admin%09", EncodedForbidden("control character")),
            ("/v1/admin%0d%0a", EncodedForbidden("control character")),
            ("/v1/admin%7F", EncodedForbidden("control character")),
            ("/v1/pets/..\\admin", Backslash),
            ("/v1\\admin", Backslash),
            ("/..", AboveRoot),
            ("/v1/../../etc", AboveRoot),
            ("/%2e%2e/x", AboveRoot),
            ("/v1/admin;x=1", Semicolon),
            ("/v1/admin;", Semicolon),
            ("/v1/%252e%252e/admin", DoubleEncoded("'.'")),
            ("/v1/pets/..%252Fadmin", DoubleEncoded("'/'")),
            ("/v1/%25%32%65%25%32%65/admin", DoubleEncoded("'.'")),
            ("/v1/admin%2500", DoubleEncoded("NUL")),
            ("/v1/%", BadEscape),
            ("/v1/%4", BadEscape),
            ("/v1/%zz", BadEscape),
            ("v1/admin", NotAbsolute),
            ("", NotAbsolute),
            ("*", NotAbsolute),
        ];
        for (raw, err) in cases {
            assert_eq!(canon(raw).as_ref(), Err(err), "{raw}");
        }
    }

    #[test]
    fn other_escapes_are_kept_in_upper_case() {
        assert_eq!(canon("/a%3bb").as_deref(), Ok("/a%3Bb"));
        assert_eq!(canon("/a%20b%2a").as_deref(), Ok("/a%20b%2A"));
        assert_eq!(canon("/a%25b").as_deref(), Ok("/a%25b"));
        assert_eq!(canon("/%e2%82%ac").as_deref(), Ok("/%E2%82%AC"));
        // Raw bytes a path may not hold are encoded, so both spellings are one path.
        assert_eq!(canon("/€").as_deref(), Ok("/%E2%82%AC"));
        assert_eq!(canon("/a\"b{c}").as_deref(), Ok("/a%22b%7Bc%7D"));
    }

    #[test]
    fn semicolons_may_be_literal() {
        let rules = PathRules {
            semicolons: Semicolons::Literal,
            ..PathRules::default()
        };
        assert_eq!(
            canonical_path("/v1/admin;x=1", rules).as_deref(),
            Ok("/v1/admin;x=1")
        );
    }

    #[test]
    fn slashes_may_be_kept() {
        assert_eq!(keep_slashes("/v1//admin").as_deref(), Ok("/v1//admin"));
        assert_eq!(keep_slashes("//").as_deref(), Ok("//"));
        assert_eq!(keep_slashes("/a//..").as_deref(), Ok("/a/"));
        assert_eq!(keep_slashes("/a/b/../c").as_deref(), Ok("/a/c"));
    }
}
