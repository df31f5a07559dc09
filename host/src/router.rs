//! Matching a request to a route: method, optional host, and a path template with parameters
//! (`/pets/{id}`) and a greedy tail (`/files/{path+}`). When several routes match a path, the
//! most specific wins, as in API Gateway: literal segments beat parameters, parameters beat a
//! greedy tail, so `/pets/mine` is chosen over `/pets/{id}` whatever their order in the file.
//!
//! Paths come here in canonical form (`canonical::path`), and templates are written in it.
//! A trailing slash does not change the route (`/v1/admin/` is the route `/v1/admin`, so no
//! greedy public route catches it for an upstream that ignores the slash); a greedy
//! parameter keeps it in its value. A parameter never matches `.` or `..`; a one-segment
//! parameter never matches an empty segment either.

use crate::canonical::path::{canonical_segment, PathRules};
use http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// A parsed route path such as `/v1/pets/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    text: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("path must start with '/'")]
    NotAbsolute,
    #[error("segment {0:?}: a parameter must be a whole segment like {{id}} or {{path+}}")]
    PartialParam(String),
    #[error("parameter name {0:?} must be letters, digits, '_' or '-'")]
    BadName(String),
    #[error("greedy parameter {{{0}+}} must be the last segment")]
    GreedyNotLast(String),
    #[error("parameter {0:?} appears twice")]
    Duplicate(String),
    #[error("a path template may have at most 31 segments")]
    TooLong,
    #[error("segment {0:?} is not in canonical form; write it as {1:?}")]
    NotCanonical(String, String),
    #[error("segment {0:?}: {1}")]
    Refused(String, String),
    #[error("dot segments ('.', '..') cannot be matched")]
    DotSegment,
    #[error("a path template does not end with '/' (a trailing slash matches the same route)")]
    TrailingSlash,
    #[error("empty segment ('//'): with merge_slashes on, no request has one")]
    EmptySegment,
}

impl PathTemplate {
    pub fn parse(text: &str) -> Result<PathTemplate, TemplateError> {
        let rest = text.strip_prefix('/').ok_or(TemplateError::NotAbsolute)?;
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        if parts.len() > 31 {
            return Err(TemplateError::TooLong);
        }
        let mut names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(TemplateError::BadName(name.to_string()));
                }
                if names.contains(&name) {
                    return Err(TemplateError::Duplicate(name.to_string()));
                }
                names.push(name);
                if greedy {
                    if i + 1 != parts.len() {
                        return Err(TemplateError::GreedyNotLast(name.to_string()));
                    }
                    Segment::Greedy(name.to_string())
                } else {
                    Segment::Param(name.to_string())
                }
            } else if part.contains('{') || part.contains('}') {
                return Err(TemplateError::PartialParam(part.to_string()));
            } else {
                Segment::Literal(part.to_string())
            };
            segments.push(seg);
        }
        Ok(PathTemplate {
            segments,
            text: text.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The template with parameter names left out: two templates with the same shape match
    /// the same paths.
    pub fn shape(&self) -> String {
        if self.segments.is_empty() {
            return "/".to_string();
        }
        let mut out = String::new();
        for seg in &self.segments {
            out.push('/');
            match seg {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(_) => out.push_str("{}"),
                Segment::Greedy(_) => out.push_str("{+}"),
            }
        }
        out
    }

    /// Whether every literal segment is written as the canonical path would hold it, so
    /// that the template can match at all.
    pub fn check_canonical(&self, rules: PathRules) -> Result<(), TemplateError> {
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            let Segment::Literal(lit) = seg else { continue };
            if lit == "." || lit == ".." {
                return Err(TemplateError::DotSegment);
            }
            if lit.is_empty() {
                if i + 1 == n {
                    return Err(TemplateError::TrailingSlash);
                }
                if rules.merge_slashes {
                    return Err(TemplateError::EmptySegment);
                }
            }
            match canonical_segment(lit, rules) {
                Ok(c) if c == *lit => {}
                Ok(c) => return Err(TemplateError::NotCanonical(lit.clone(), c)),
                Err(e) => return Err(TemplateError::Refused(lit.clone(), e.to_string())),
            }
        }
        Ok(())
    }

    /// The parameters if `path` matches, with a score that ranks how specific the match is:
    /// two bits per segment (literal 3, parameter 2, greedy 1), most significant first.
    fn matches(&self, path: &str) -> Option<(Vec<(String, String)>, u64)> {
        let rest = path.strip_prefix('/')?;
        // A trailing slash is not a segment: `/a/b/` matches what `/a/b` matches.
        let (rest, trailing) = match rest.strip_suffix('/') {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let parts: Vec<&str> = match (rest.is_empty(), trailing) {
            (true, false) => Vec::new(),
            // `//`, when slashes are kept: one empty segment and the trailing slash.
            (true, true) => vec![""],
            _ => rest.split('/').collect(),
        };
        let mut params = Vec::new();
        let mut score: u64 = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            if let Segment::Greedy(name) = seg {
                // A greedy parameter takes the rest of the path: one or more whole segments,
                // none a dot segment, and the trailing slash if any. Empty segments only
                // occur when `merge_slashes` is off, which says upstreams keep `//` too.
                let tail = parts.get(i..).unwrap_or_default();
                if tail.is_empty() || tail.iter().any(|p| *p == "." || *p == "..") {
                    return None;
                }
                let mut value = tail.join("/");
                if trailing {
                    value.push('/');
                }
                params.push((name.clone(), value));
                return Some((params, normalize((score << 2) | 1, i + 1)));
            }
            let part = *parts.get(i)?;
            match seg {
                Segment::Literal(lit) if lit == part => score = (score << 2) | 3,
                Segment::Param(name) if matchable(part) => {
                    params.push((name.clone(), part.to_string()));
                    score = (score << 2) | 2;
                }
                _ => return None,
            }
        }
        if parts.len() != self.segments.len() {
            return None;
        }
        Some((params, normalize(score, self.segments.len())))
    }
}

/// Whether a parameter may take `part` as (part of) its value.
fn matchable(part: &str) -> bool {
    !part.is_empty() && part != "." && part != ".."
}

/// Left-align a score of `n` segments so that scores of templates of different lengths
/// compare segment by segment.
fn normalize(score: u64, n: usize) -> u64 {
    let n = n.min(31);
    score << (2 * (31 - n))
}

/// Parameter names and values, in template order.
pub type Params = Vec<(String, String)>;

/// What the router found for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'a, T> {
    Found {
        route: &'a T,
        params: Vec<(String, String)>,
    },
    /// Some route has this path, none has this method; `allow` lists the methods that do.
    MethodNotAllowed {
        allow: Vec<Method>,
    },
    NotFound,
}

struct Entry<T> {
    methods: Option<Vec<Method>>,
    host: Option<String>,
    path: PathTemplate,
    value: T,
}

/// The routes of one config, in file order.
pub struct Router<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            entries: Vec::new(),
        }
    }
}

impl<T> Router<T> {
    pub fn add(
        &mut self,
        methods: Option<Vec<Method>>,
        host: Option<String>,
        path: PathTemplate,
        value: T,
    ) {
        self.entries.push(Entry {
            methods,
            host,
            path,
            value,
        });
    }

    /// Find the route for `method`, `host` (the Host header without port, lower case) and `path`.
    pub fn find(&self, method: &Method, host: Option<&str>, path: &str) -> Match<'_, T> {
        let mut best: Option<(u64, &Entry<T>, Params)> = None;
        let mut allow: Vec<Method> = Vec::new();
        let mut path_matched = false;
        for entry in &self.entries {
            if let Some(pattern) = &entry.host {
                if !host.is_some_and(|h| host_matches(pattern, h)) {
                    continue;
                }
            }
            let Some((params, mut score)) = entry.path.matches(path) else {
                continue;
            };
            path_matched = true;
            let method_ok = match &entry.methods {
                None => true,
                Some(ms) => {
                    let ok = ms.contains(method)
                        || (method == Method::HEAD && ms.contains(&Method::GET));
                    if !ok {
                        allow.extend(ms.iter().cloned());
                    }
                    ok
                }
            };
            if !method_ok {
                continue;
            }
            // A route pinned to a host is more specific than one that is not.
            score = score.saturating_mul(2) + u64::from(entry.host.is_some());
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, entry, params));
            }
        }
        match best {
            Some((_, entry, params)) => Match::Found {
                route: &entry.value,
                params,
            },
            None if path_matched => {
                allow.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                allow.dedup();
                Match::MethodNotAllowed { allow }
            }
            None => Match::NotFound,
        }
    }
}

/// `api.example.com` matches itself; `*.example.com` matches any subdomain of it.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host[..host.len() - suffix.len()].ends_with('.')
        }
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Spec<'a> = (&'a str, Option<&'a [&'a str]>, Option<&'a str>);

    fn router(routes: &[Spec<'_>]) -> Router<usize> {
        let mut r = Router::default();
        for (i, (path, methods, host)) in routes.iter().enumerate() {
            let methods = methods.map(|ms| {
                ms.iter()
                    .map(|m| Method::from_bytes(m.as_bytes()).unwrap())
                    .collect()
            });
            r.add(
                methods,
                host.map(str::to_string),
                PathTemplate::parse(path).unwrap(),
                i,
            );
        }
        r
    }

    fn found(m: Match<'_, usize>) -> (usize, Vec<(String, String)>) {
        match m {
            Match::Found { route, params } => (*route, params),
            other => panic!("expected a match, got {other:?}"),
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn literal_param_and_greedy() {
        let r = router(&[
            ("/pets/{id}", None, None),
            ("/pets/mine", None, None),
            ("/files/{path+}", None, None),
            ("/", None, None),
        ]);
        assert_eq!(
            found(r.find(&Method::GET, None, "/pets/7")),
            (0, p(&[("id", "7")]))
        );
        assert_eq!(found(r.find(&Method::GET, None, "/pets/mine")), (1, vec![]));
        assert_eq!(
            found(r.find(&Method::GET, None, "/files/a/b/c.txt")),
            (2, p(&[("path", "a/b/c.txt")]))
        );
        assert_eq!(found(r.find(&Method::GET, None, "/")), (3, vec![]));
        assert_eq!(r.find(&Method::GET, None, "/pets"), Match::NotFound);
        assert_eq!(r.find(&Method::GET, None, "/pets/7/toys"), Match::NotFound);
        assert_eq!(r.find(&Method::GET, None, "/pets/"), Match::NotFound);
        assert_eq!(r.find(&Method::GET, None, "/files"), Match::NotFound);
        assert_eq!(r.find(&Method::GET, None, "/files/"), Match::NotFound);
        assert_eq!(r.find(&Method::GET, None, "/nope"), Match::NotFound);
    }

    #[test]
    fn specific_beats_generic_regardless_of_order() {
        let r = router(&[
            ("/{proxy+}", None, None),
            ("/a/{x}", None, None),
            ("/a/b", None, None),
        ]);
        assert_eq!(found(r.find(&Method::GET, None, "/a/b")).0, 2);
        assert_eq!(found(r.find(&Method::GET, None, "/a/c")).0, 1);
        assert_eq!(found(r.find(&Method::GET, None, "/a/c/d")).0, 0);
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let r = router(&[
            ("/pets/{id}", Some(&["GET", "PUT"]), None),
            ("/pets/{id}", Some(&["DELETE"]), None),
        ]);
        assert_eq!(found(r.find(&Method::DELETE, None, "/pets/1")).0, 1);
        assert_eq!(found(r.find(&Method::HEAD, None, "/pets/1")).0, 0);
        assert_eq!(
            r.find(&Method::POST, None, "/pets/1"),
            Match::MethodNotAllowed {
                allow: vec![Method::DELETE, Method::GET, Method::PUT]
            }
        );
    }

    #[test]
    fn host_routes() {
        let r = router(&[
            ("/x", None, Some("api.example.com")),
            ("/x", None, Some("*.example.com")),
            ("/x", None, None),
        ]);
        assert_eq!(
            found(r.find(&Method::GET, Some("api.example.com"), "/x")).0,
            0
        );
        assert_eq!(
            found(r.find(&Method::GET, Some("a.example.com"), "/x")).0,
            1
        );
        assert_eq!(found(r.find(&Method::GET, Some("example.com"), "/x")).0, 2);
        assert_eq!(
            found(r.find(&Method::GET, Some("evilexample.com"), "/x")).0,
            2
        );
        assert_eq!(found(r.find(&Method::GET, None, "/x")).0, 2);
    }

    #[test]
    fn trailing_slash_is_the_same_route_and_kept_by_greedy_params() {
        let r = router(&[
            ("/v1/admin", None, None),
            ("/v1/{proxy+}", None, None),
            ("/pets/{id}", None, None),
            ("/", None, None),
        ]);
        assert_eq!(found(r.find(&Method::GET, None, "/v1/admin/")), (0, vec![]));
        assert_eq!(
            found(r.find(&Method::GET, None, "/v1/a/b/")),
            (1, p(&[("proxy", "a/b/")]))
        );
        assert_eq!(
            found(r.find(&Method::GET, None, "/pets/7/")),
            (2, p(&[("id", "7")]))
        );
        assert_eq!(found(r.find(&Method::GET, None, "/")).0, 3);
    }

    #[test]
    fn parameters_never_take_dot_or_empty_segments() {
        let r = router(&[("/v1/pets/{id}", None, None), ("/v1/{proxy+}", None, None)]);
        assert_eq!(r.find(&Method::GET, None, "/v1/pets/.."), Match::NotFound);
        assert_eq!(r.find(&Method::GET, None, "/v1/pets/."), Match::NotFound);
        assert_eq!(r.find(&Method::GET, None, "/v1/../admin"), Match::NotFound);
        // Only with merge_slashes off does a path hold `//`; a greedy value keeps it.
        assert_eq!(
            found(r.find(&Method::GET, None, "/v1//admin")),
            (1, p(&[("proxy", "/admin")]))
        );
        assert_eq!(
            found(r.find(&Method::GET, None, "/v1/pets/..x")),
            (0, p(&[("id", "..x")]))
        );
    }

    #[test]
    fn templates_must_be_canonical() {
        let rules = PathRules::default();
        let check = |t: &str| PathTemplate::parse(t).unwrap().check_canonical(rules);
        assert_eq!(check("/v1/{proxy+}"), Ok(()));
        assert_eq!(check("/"), Ok(()));
        assert_eq!(check("/a%3Bb/{id}"), Ok(()));
        assert_eq!(
            check("/adm%69n"),
            Err(TemplateError::NotCanonical(
                "adm%69n".into(),
                "admin".into()
            ))
        );
        assert_eq!(check("/a/../b"), Err(TemplateError::DotSegment));
        assert_eq!(check("/a/"), Err(TemplateError::TrailingSlash));
        assert_eq!(check("/a//b"), Err(TemplateError::EmptySegment));
        assert!(matches!(check("/a;b"), Err(TemplateError::Refused(..))));
        let keep = PathRules {
            merge_slashes: false,
            ..rules
        };
        assert_eq!(
            PathTemplate::parse("/a//b").unwrap().check_canonical(keep),
            Ok(())
        );
    }

    #[test]
    fn shapes_ignore_parameter_names() {
        let shape = |t: &str| PathTemplate::parse(t).unwrap().shape();
        assert_eq!(shape("/pets/{id}"), shape("/pets/{petId}"));
        assert_eq!(shape("/files/{p+}"), "/files/{+}");
        assert_ne!(shape("/files/{p+}"), shape("/files/{p}"));
        assert_eq!(shape("/"), "/");
    }

    #[test]
    fn template_errors() {
        assert_eq!(PathTemplate::parse("pets"), Err(TemplateError::NotAbsolute));
        assert_eq!(
            PathTemplate::parse("/a/{p+}/b"),
            Err(TemplateError::GreedyNotLast("p".into()))
        );
        assert_eq!(
            PathTemplate::parse("/a{id}"),
            Err(TemplateError::PartialParam("a{id}".into()))
        );
        assert_eq!(
            PathTemplate::parse("/{a}/{a}"),
            Err(TemplateError::Duplicate("a".into()))
        );
        assert_eq!(
            PathTemplate::parse("/{a b}"),
            Err(TemplateError::BadName("a b".into()))
        );
    }
}
