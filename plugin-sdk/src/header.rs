//! Header names and comma-separated header values.

/// Whether `name` is a valid header name: an HTTP token (RFC 9110 `tchar`s).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// The items of comma-separated header values (`Vary`, `Access-Control-Request-Headers`, ...),
/// trimmed, empty items dropped.
pub fn list_items<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

/// Whether the comma-separated `values` hold `item` (ASCII case-insensitive); an item `*`
/// holds everything.
pub fn list_contains<'a>(values: impl IntoIterator<Item = &'a str>, item: &str) -> bool {
    list_items(values)
        .iter()
        .any(|i| i.eq_ignore_ascii_case(item) || *i == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_tokens() {
        assert!(is_header_name("x-request-id"));
        assert!(is_header_name("X_Foo.Bar~1"));
        assert!(!is_header_name(""));
        assert!(!is_header_name("a:b"));
        assert!(!is_header_name("a b"));
        assert!(!is_header_name("é"));
    }

    #[test]
    fn lists() {
        assert_eq!(list_items(["a, b", " ,c ", ""]), ["a", "b", "c"]);
        assert!(list_contains(["Accept-Encoding, Origin"], "origin"));
        assert!(list_contains(["*"], "origin"));
        assert!(!list_contains(["Accept"], "origin"));
    }
}
