//! `allowed_hosts`: the origins a plugin may call with `wasi:http/outgoing-handler`, written
//! as URLs without a path (`https://api.example.com`, `http://127.0.0.1:8080`). A request goes
//! out only when its scheme, host and port equal one of them; nothing else is granted.

use std::fmt;

/// One allowed origin: scheme, lower-cased host, and port (the scheme's default if unwritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parse `scheme://host[:port]`; a path, query, user or wildcard is refused so that what
    /// is granted is exactly what is written.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "{text:?} is not an origin: write `https://host` or `http://host:port`"
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', '*']) {
            return Err(format!(
                "{text:?} is not an origin: only scheme, host and port (no path, user or wildcard)"
            ));
        }
        let authority: http::uri::Authority = rest
            .parse()
            .map_err(|e| format!("{text:?} is not an origin: {e}"))?;
        Ok(Origin {
            https,
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        })
    }

    /// Whether a request to `uri` goes to this origin.
    pub fn admits(&self, uri: &http::Uri) -> bool {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return false,
        };
        let Some(authority) = uri.authority() else {
            return false;
        };
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        https == self.https
            && port == self.port
            && authority.host().eq_ignore_ascii_case(&self.host)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn admits_exactly_what_is_written() {
        let o = Origin::parse("https://API.example.com").unwrap();
        assert!(o.admits(&"https://api.example.com/x?y".parse().unwrap()));
        assert!(o.admits(&"https://api.example.com:443/".parse().unwrap()));
        assert!(!o.admits(&"http://api.example.com/".parse().unwrap()));
        assert!(!o.admits(&"https://api.example.com:8443/".parse().unwrap()));
        assert!(!o.admits(&"https://evil.api.example.com/".parse().unwrap()));
        assert!(!o.admits(&"https://api.example.com.evil/".parse().unwrap()));
        let local = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert!(local.admits(&"http://127.0.0.1:8080/a".parse().unwrap()));
        assert!(!local.admits(&"http://127.0.0.1:8081/a".parse().unwrap()));
        for bad in [
            "api.example.com",
            "ftp://x",
            "https://",
            "https://x/path",
            "https://*.example.com",
            "https://u@x",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
