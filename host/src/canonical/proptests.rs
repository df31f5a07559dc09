//! Properties of the canonical path and of routing on it, over generated paths built from
//! the pieces attacks are made of (dots, escapes in both cases, slashes, `;`, `\`).

use super::path::{canonical_path, PathRules, Semicolons};
use crate::router::{Match, PathTemplate, Router};
use http::Method;
use proptest::prelude::*;

/// Raw path pieces: plain names, dot segments and their encodings, separators, escapes.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "v1", "admin", "pets", "adm", "%69n", "a", "B", "%41", "%7e", "-", ".", "..", "%2e", "%2E",
        ".%2e", "%2e%2E", "/", "//", "%2f", "%2F", "%5c", "\\", ";", ";x=1", "%3b", "%3B", "%25",
        "%252e", "%00", "%09", "%", "%zz", "é", "\"", "{", "x.y", "~",
    ])
}

fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
}

/// A canonical-looking path of plain segments, optionally with a trailing slash.
fn clean_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop::sample::select(vec![
                "v1",
                "admin",
                "pets",
                "a",
                "x.y",
                "~u",
                "a%3Bb",
                "%E2%82%AC",
            ]),
            0..6,
        ),
        any::<bool>(),
    )
        .prop_map(|(segs, trailing)| {
            let mut p = format!("/{}", segs.join("/"));
            if trailing && !segs.is_empty() {
                p.push('/');
            }
            p
        })
}

/// Spell `c` differently without changing what it means: `./` and `x/../` inserted,
/// slashes doubled, unreserved characters percent-encoded in either case.
fn obfuscate(c: &str, choices: &[u8]) -> String {
    let mut out = String::new();
    let mut k = 0;
    let mut next = || {
        k += 1;
        choices.get(k % choices.len().max(1)).copied().unwrap_or(0)
    };
    let mut in_escape = 0;
    for ch in c.chars() {
        // The two hex digits of an escape stay as they are.
        if in_escape > 0 {
            in_escape -= 1;
            out.push(ch);
            continue;
        }
        if ch == '%' {
            in_escape = 2;
        }
        match (ch, next() % 6) {
            ('/', 0) => out.push_str("/./"),
            ('/', 1) => out.push_str("/zz/../"),
            ('/', 2) => out.push_str("//"),
            ('/', 3) => out.push_str("/%2e/"),
            (c, 4) if c.is_ascii_alphanumeric() || "-._~".contains(c) => {
                out.push_str(&format!("%{:02x}", c as u32))
            }
            (c, 5) if c.is_ascii_alphanumeric() || "-._~".contains(c) => {
                out.push_str(&format!("%{:02X}", c as u32))
            }
            (c, _) => out.push(c),
        }
    }
    out
}

/// How a decode-once, dot-resolving upstream such as nginx reads a path: every escape
/// decoded (`%2F` included), then dot segments resolved and slashes merged. `None` when it
/// would refuse the path.
fn upstream_view(raw: &str) -> Option<Vec<u8>> {
    let b = raw.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(b[i]);
            i += 1;
        }
    }
    let mut out: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = decoded.split(|c| *c == b'/').skip(1).collect();
    let last = parts.len().saturating_sub(1);
    for (n, seg) in parts.iter().enumerate() {
        match *seg {
            b"." => {}
            b".." => {
                out.pop()?;
            }
            b"" if n != last => continue,
            s => {
                out.push(s);
                continue;
            }
        }
        if n == last {
            out.push(b"");
        }
    }
    Some(out.join(&b'/'))
}

fn router() -> Router<&'static str> {
    let mut r = Router::default();
    for (name, path) in [
        ("admin", "/v1/admin"),
        ("public", "/v1/{proxy+}"),
        ("pet", "/v1/pets/{id}"),
        ("root", "/"),
        ("any", "/{all+}"),
    ] {
        r.add(None, None, PathTemplate::parse(path).unwrap(), name);
    }
    r
}

fn route(r: &Router<&'static str>, path: &str) -> Option<&'static str> {
    match r.find(&Method::GET, None, path) {
        Match::Found { route, .. } => Some(*route),
        _ => None,
    }
}

fn rules(merge_slashes: bool, literal: bool) -> PathRules {
    PathRules {
        merge_slashes,
        semicolons: if literal {
            Semicolons::Literal
        } else {
            Semicolons::Reject
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalizing_is_idempotent(raw in raw_path(), merge in any::<bool>(), literal in any::<bool>()) {
        let rules = rules(merge, literal);
        if let Ok(c) = canonical_path(&raw, rules) {
            prop_assert_eq!(canonical_path(&c, rules), Ok(c.clone()), "raw {:?}", raw);
        }
    }

    #[test]
    fn the_result_has_no_dot_segment_and_no_double_slash(raw in raw_path(), literal in any::<bool>()) {
        if let Ok(c) = canonical_path(&raw, rules(true, literal)) {
            prop_assert!(c.starts_with('/'));
            prop_assert!(!c.contains("//"), "{:?} -> {:?}", raw, c);
            for seg in c.split('/') {
                prop_assert!(seg != "." && seg != "..", "{:?} -> {:?}", raw, c);
            }
            prop_assert!(!c.contains('\\'));
            let lower = c.to_ascii_lowercase();
            prop_assert!(!lower.contains("%2f") && !lower.contains("%5c") && !lower.contains("%00"));
            prop_assert!(!lower.contains("%2e"), "{:?} -> {:?}", raw, c);
        }
    }

    #[test]
    fn a_decoding_upstream_reads_the_canonical_path_as_it_reads_the_raw_one(raw in raw_path()) {
        if let Ok(c) = canonical_path(&raw, rules(true, true)) {
            prop_assert_eq!(upstream_view(&c), upstream_view(&raw), "raw {:?} canonical {:?}", raw, c);
        }
    }

    #[test]
    fn the_route_of_a_raw_path_is_the_route_of_its_normal_form(
        clean in clean_path(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let rules = PathRules::default();
        let normal = canonical_path(&clean, rules).unwrap();
        let raw = obfuscate(&clean, &choices);
        let canon = canonical_path(&raw, rules);
        prop_assert_eq!(canon.as_deref(), Ok(normal.as_str()), "raw {:?}", raw);
        let r = router();
        prop_assert_eq!(route(&r, canon.as_deref().unwrap()), route(&r, &normal));
    }

    #[test]
    fn whatever_raw_path_reaches_the_admin_page_is_routed_to_admin(raw in raw_path()) {
        // The upstream serves its admin page for `/v1/admin` and `/v1/admin/`; any raw path
        // it would read that way, once made canonical, must be routed to the admin route.
        if let Ok(c) = canonical_path(&raw, PathRules::default()) {
            let view = upstream_view(&c);
            if view.as_deref() == Some(b"v1/admin") || view.as_deref() == Some(b"v1/admin/") {
                prop_assert_eq!(route(&router(), &c), Some("admin"), "raw {:?} canonical {:?}", raw, c);
            }
        }
    }
}
