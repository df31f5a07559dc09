//! The request's host: one value, of valid syntax, in one form.
//!
//! Routes pinned to a host, plugins that sign or key on `Host`, and the `X-Forwarded-Host`
//! an upstream builds links from must all see the same name. So the authority is parsed
//! strictly (a DNS name, an IPv4 address or a bracketed IPv6 address, then an optional
//! port); anything else is refused rather than passed on for someone else to read
//! differently (`a,b`, `u@a`, `evil.example/x?y`, `a:1:2`).

use std::fmt;
use std::net::Ipv6Addr;

/// A validated `host[:port]`. The host is in lower case without a trailing dot; an IPv6
/// address is kept without its brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    host: String,
    port: Option<u16>,
    ipv6: bool,
}

/// Why a host was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("empty host")]
    Empty,
    #[error("invalid host {0:?}")]
    Syntax(String),
    #[error("invalid port in host {0:?}")]
    Port(String),
    #[error("more than one Host header")]
    Repeated,
    #[error("HTTP/1.1 request without Host")]
    Missing,
    #[error("the request target's authority {target:?} and Host {header:?} disagree")]
    Disagree { target: String, header: String },
}

impl Authority {
    /// Parse an authority as it comes in `Host`, `:authority` or `X-Forwarded-Host`.
    pub fn parse(text: &str) -> Result<Authority, HostError> {
        if text.is_empty() {
            return Err(HostError::Empty);
        }
        let syntax = || HostError::Syntax(text.to_string());
        let (host, port, ipv6) = if let Some(rest) = text.strip_prefix('[') {
            let (inner, after) = rest.split_once(']').ok_or_else(syntax)?;
            let addr: Ipv6Addr = inner.parse().map_err(|_| syntax())?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(syntax)?),
            };
            (addr.to_string(), port, true)
        } else {
            let (name, port) = match text.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (text, None),
            };
            (host_name(name).ok_or_else(syntax)?, port, false)
        };
        let port = match port {
            None => None,
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse().map_err(|_| HostError::Port(text.to_string()))?)
            }
            Some(_) => return Err(HostError::Port(text.to_string())),
        };
        Ok(Authority { host, port, ipv6 })
    }

    /// The host to match routes against: lower case, no trailing dot, no port.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether two authorities name the same host and port, a missing port being the
    /// scheme's default.
    pub fn same_as(&self, other: &Authority, scheme: &str) -> bool {
        let default = if scheme == "https" { 443 } else { 80 };
        self.host == other.host && self.port.unwrap_or(default) == other.port.unwrap_or(default)
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ipv6 {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// A DNS name (letters, digits, `-`, `_` in dot-separated labels of 1 to 63 bytes; one
/// trailing dot allowed and dropped) or an IPv4 address, in lower case.
pub fn host_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.split('.').all(label_ok) {
        Some(name.to_ascii_lowercase())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, Option<u16>, String) {
        let a = Authority::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (a.host().to_string(), a.port(), a.to_string())
    }

    #[test]
    fn valid_hosts_in_one_form() {
        assert_eq!(
            ok("API.Example.com"),
            ("api.example.com".into(), None, "api.example.com".into())
        );
        assert_eq!(
            ok("api.example.com.:8443"),
            (
                "api.example.com".into(),
                Some(8443),
                "api.example.com:8443".into()
            )
        );
        assert_eq!(
            ok("127.0.0.1:80"),
            ("127.0.0.1".into(), Some(80), "127.0.0.1:80".into())
        );
        assert_eq!(
            ok("[::1]:8080"),
            ("::1".into(), Some(8080), "[::1]:8080".into())
        );
        assert_eq!(
            ok("[2001:DB8::1]"),
            ("2001:db8::1".into(), None, "[2001:db8::1]".into())
        );
        assert_eq!(ok("my_host"), ("my_host".into(), None, "my_host".into()));
    }

    #[test]
    fn invalid_hosts_are_refused() {
        for bad in [
            "",
            "a:1:2",
            "a b",
            "evil.example/x?y",
            "u@a",
            "[::1",
            "[::1]x",
            "[::1]:",
            "a,b",
            "a..b",
            ".",
            "..",
            "a:",
            "a:99999",
            "a:123456",
            "a:-1",
            "a:+80",
            "[fe80::1%eth0]",
            "[v1.x]",
            "é.example",
            "a\tb",
            "a%2eb",
            &"a".repeat(64),
        ] {
            assert!(Authority::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn same_host_with_default_ports() {
        let a = Authority::parse("a.example").unwrap();
        let b = Authority::parse("A.example.:80").unwrap();
        let c = Authority::parse("a.example:443").unwrap();
        assert!(a.same_as(&b, "http"));
        assert!(!a.same_as(&c, "http"));
        assert!(a.same_as(&c, "https"));
        assert!(!a.same_as(&Authority::parse("b.example").unwrap(), "http"));
    }
}
