//! `{key}` templates of the request context, for the work plugins hand to the host in their
//! plans (header values, forward URLs). The syntax is the SDK's (`plugin-sdk/src/template.rs`):
//! a placeholder is `{` + a key of ASCII letters, digits and `_ . - + :` + `}`; anything else,
//! a lone brace or `{"json": 1}`, is copied as is; a key that is not set becomes "".

use crate::capabilities::types::ContextData;

/// `template` with each `{key}` replaced by `lookup(key)`.
pub fn render_with<'a>(template: &str, mut lookup: impl FnMut(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_key(&after[..close]) => {
                if let Some(value) = lookup(&after[..close]) {
                    out.push_str(value);
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A header value template rendered with the request context.
pub fn render(template: &str, ctx: &ContextData) -> String {
    render_with(template, |key| ctx.get(key))
}

/// A forward URL: `{id}` / `{path+}` are the path parameters (context `param.NAME`), no other
/// context key is reachable; the client's query is appended after `?` or `&`.
pub fn render_url(template: &str, ctx: &ContextData, query: Option<&str>) -> String {
    let mut key = String::new();
    let url = render_with(template, |name| {
        key.clear();
        key.push_str("param.");
        key.push_str(name.strip_suffix('+').unwrap_or(name));
        ctx.get(&key)
    });
    append_query(url, query)
}

fn append_query(url: String, query: Option<&str>) -> String {
    let query = match query {
        Some(q) if !q.is_empty() => q,
        _ => return url,
    };
    let (base, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url.as_str(), ""),
    };
    let separator = if base.ends_with('?') || base.ends_with('&') {
        ""
    } else if base.contains('?') {
        "&"
    } else {
        "?"
    };
    format!("{base}{separator}{query}{fragment}")
}

fn is_key(candidate: &str) -> bool {
    !candidate.is_empty()
        && candidate
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'+' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ContextData {
        let mut c = ContextData::default();
        c.set("request_id", "req-1");
        c.set("param.id", "42");
        c.set("param.path", "a/b/c");
        c
    }

    #[test]
    fn renders_like_the_sdk() {
        let c = ctx();
        assert_eq!(render("id={request_id}", &c), "id=req-1");
        assert_eq!(render("a{nope}b", &c), "ab");
        assert_eq!(render("{ request_id }", &c), "{ request_id }");
        assert_eq!(render(r#"{"a": 1}"#, &c), r#"{"a": 1}"#);
        assert_eq!(render("{{request_id}", &c), "{req-1");
        assert_eq!(render("{request_id", &c), "{request_id");
    }

    #[test]
    fn urls_take_path_parameters_and_the_query() {
        let c = ctx();
        assert_eq!(
            render_url("http://h/pets/{id}", &c, None),
            "http://h/pets/42"
        );
        assert_eq!(
            render_url("http://h/f/{path+}", &c, Some("v=1")),
            "http://h/f/a/b/c?v=1"
        );
        assert_eq!(render_url("http://h/{request_id}", &c, None), "http://h/");
        assert_eq!(
            render_url("http://h/s?api=1", &c, Some("x=2")),
            "http://h/s?api=1&x=2"
        );
        assert_eq!(
            render_url("http://h/p#top", &c, Some("a=1")),
            "http://h/p?a=1#top"
        );
        assert_eq!(render_url("http://h/p", &c, Some("")), "http://h/p");
    }
}
