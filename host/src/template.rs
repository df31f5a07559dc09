//! `{key}` templates of the request context, for the work plugins hand to the host in their
//! plans (header values, forward URLs). Rendered by the `wicket-template` crate, the one the
//! SDK renders with, so a template means the same whether the plugin or the host applies it.

use crate::capabilities::types::ContextData;

/// A header value template rendered with the request context.
pub fn render(template: &str, ctx: &ContextData) -> String {
    wicket_template::render(template, |key| ctx.get(key))
}

/// A forward URL: `{id}` / `{path+}` are the path parameters (context `param.NAME`), no other
/// context key is reachable; the client's query is appended after `?` or `&`.
pub fn render_url(template: &str, ctx: &ContextData, query: Option<&str>) -> String {
    let url = wicket_template::render_url(template, |key| ctx.get(key));
    wicket_template::append_query(&url, query)
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
