//! `{key}` templates: a placeholder is `{` + a key of ASCII letters, digits and `_ . - + :`
//! + `}` (e.g. `{request_id}`, `{param.id}`); anything else, such as a lone brace or
//! `{"json": 1}`, is copied as is. Plugins render them through the SDK and the gateway renders
//! the ones plugins hand it in their plans (header edits, forward URLs): both use this crate,
//! so a template means the same wherever it runs.

/// Renders `template`, replacing each `{key}` with `lookup(key)`; `None` becomes the empty
/// string. Values are inserted as they are, never rendered again.
pub fn render<F, S>(template: &str, mut lookup: F) -> String
where
    F: FnMut(&str) -> Option<S>,
    S: AsRef<str>,
{
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_key(&after[..close]) => {
                if let Some(value) = lookup(&after[..close]) {
                    out.push_str(value.as_ref());
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

/// Renders a URL template whose placeholders are path parameters: `{id}` becomes
/// `lookup("param.id")`, and a greedy parameter may be written `{path+}` as in the route
/// template.
pub fn render_url<F, S>(template: &str, mut lookup: F) -> String
where
    F: FnMut(&str) -> Option<S>,
    S: AsRef<str>,
{
    let mut key = String::new();
    render(template, |name| {
        key.clear();
        key.push_str("param.");
        key.push_str(name.strip_suffix('+').unwrap_or(name));
        lookup(&key)
    })
}

/// Appends a raw query string to `url`: after `?`, or after `&` when `url` already has a
/// query. An absent or empty query leaves `url` unchanged. A `#fragment` in `url` stays last.
pub fn append_query(url: &str, query: Option<&str>) -> String {
    let query = match query {
        Some(q) if !q.is_empty() => q,
        _ => return url.to_owned(),
    };
    let (base, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
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
