//! `Cache-Control` directives (RFC 9111 §5.2): what the upstream allows a shared cache to
//! store, and whether a client asks for a fresh answer.

/// The directives of every `Cache-Control` value, names in lower case, quotes removed from
/// values. Commas inside quoted strings (`private="a, b"`) do not split.
pub fn directives<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for value in values {
        let mut item = String::new();
        let mut quoted = false;
        let mut escaped = false;
        for c in value.chars().chain(std::iter::once(',')) {
            if quoted {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                    continue;
                } else if c == '"' {
                    quoted = false;
                    continue;
                }
                item.push(c);
                continue;
            }
            match c {
                '"' => quoted = true,
                ',' => {
                    let text = std::mem::take(&mut item);
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let (name, arg) = match text.split_once('=') {
                        Some((n, a)) => (n.trim(), Some(a.trim().to_owned())),
                        None => (text, None),
                    };
                    out.push((name.to_ascii_lowercase(), arg));
                }
                c => item.push(c),
            }
        }
    }
    out
}

/// What a response's `Cache-Control` says about storing it in a shared cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storable {
    /// `no-store`, `private` or `no-cache` (which would need revalidation we do not do), or a
    /// lifetime of 0.
    No,
    /// Storable, for at most this many seconds when the response says so (`s-maxage`, else
    /// `max-age`).
    Yes(Option<u64>),
}

/// Reads a response's `Cache-Control` values.
pub fn storable<'a>(values: impl IntoIterator<Item = &'a str>) -> Storable {
    let mut max_age = None;
    let mut s_maxage = None;
    for (name, arg) in directives(values) {
        match name.as_str() {
            "no-store" | "private" | "no-cache" => return Storable::No,
            "max-age" => max_age = arg.and_then(|a| a.parse::<u64>().ok()).or(Some(0)),
            "s-maxage" => s_maxage = arg.and_then(|a| a.parse::<u64>().ok()).or(Some(0)),
            _ => {}
        }
    }
    match s_maxage.or(max_age) {
        Some(0) => Storable::No,
        lifetime => Storable::Yes(lifetime),
    }
}

/// Whether a request's `Cache-Control` asks for `max-age=0` (a fresh answer).
pub fn wants_fresh<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    directives(values)
        .iter()
        .any(|(name, arg)| name == "max-age" && arg.as_deref() == Some("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        assert_eq!(
            directives([
                "public, Max-Age=60",
                "private=\"set-cookie, x-a\", no-transform"
            ]),
            [
                ("public".to_owned(), None),
                ("max-age".to_owned(), Some("60".to_owned())),
                ("private".to_owned(), Some("set-cookie, x-a".to_owned())),
                ("no-transform".to_owned(), None),
            ]
        );
        assert!(directives([",, ,"]).is_empty());
    }

    #[test]
    fn storability() {
        assert_eq!(storable([]), Storable::Yes(None));
        assert_eq!(storable(["public"]), Storable::Yes(None));
        assert_eq!(storable(["max-age=60"]), Storable::Yes(Some(60)));
        assert_eq!(
            storable(["max-age=60, s-maxage=10"]),
            Storable::Yes(Some(10))
        );
        assert_eq!(storable(["no-store"]), Storable::No);
        assert_eq!(storable(["public", "No-Store"]), Storable::No);
        assert_eq!(storable(["private"]), Storable::No);
        assert_eq!(storable(["private=\"x\""]), Storable::No);
        assert_eq!(storable(["no-cache"]), Storable::No);
        assert_eq!(storable(["max-age=0"]), Storable::No);
        assert_eq!(storable(["max-age=bogus"]), Storable::No);
    }

    #[test]
    fn fresh_requests() {
        assert!(wants_fresh(["max-age=0"]));
        assert!(wants_fresh(["no-transform, MAX-AGE=0"]));
        assert!(!wants_fresh(["max-age=10"]));
        assert!(!wants_fresh(["no-cache"]));
        assert!(!wants_fresh([]));
    }
}
