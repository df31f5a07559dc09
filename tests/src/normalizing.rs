//! Upstreams that normalize request paths, as real servers do, for the request-hardening
//! tests: a path the gateway routes one way must not be served as another page.
//!
//! - [`Nginx`] is Debian's nginx on a free loopback port: it decodes `%XX` once (`%2F`
//!   included), resolves dot segments and merges slashes before matching `location`s.
//! - [`LenientUpstream`] reads paths the way the most forgiving servers do together (nginx
//!   plus Tomcat/Spring and Windows habits): escapes decoded once, `\` read as `/`,
//!   `;params` dropped from each segment, dot segments resolved, slashes merged, a trailing
//!   slash ignored.
//!
//! Both serve `SECRET admin page` for `/v1/admin` (and `/v1/admin/`) and `public <path>`
//! for anything else, and answer `400` to what they cannot read.

use crate::{serve_on_thread, Upstream};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The page the attacks are after.
pub const SECRET: &str = "SECRET admin page";

/// Debian's nginx serving the admin page, stopped on drop.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start() -> Nginx {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("nginx is not installed (apt-get install nginx)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {addr};
        location ~ ^/v1/admin/?$ {{ return 200 "{SECRET}\n"; }}
        location / {{ return 200 "public $uri\n"; }}
    }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            addr,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The forgiving upstream described in the module doc.
pub struct LenientUpstream;

impl LenientUpstream {
    pub fn start() -> Upstream {
        serve_on_thread(service_fn(lenient))
    }
}

async fn lenient(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (status, body) = match lenient_view(req.uri().path()) {
        Some(p) if p == "/v1/admin" => (200, SECRET.to_string()),
        Some(p) => (200, format!("public {p}")),
        None => (400, "bad path".to_string()),
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(resp)
}

/// How the lenient upstream reads `raw`; `None` when it refuses it.
pub fn lenient_view(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8_lossy(&decoded).replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in text.split('/') {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(format!("/{}", out.join("/")))
}

/// Send `request` (raw bytes, e.g. a request line no client library would write) and read
/// the whole answer: status code and body. The request should ask for `Connection: close`.
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `GET <target>` with `Host: <host>` and extra header lines, on its own connection.
pub fn get(addr: SocketAddr, target: &str, host: &str, extra: &str) -> (u16, String) {
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    raw_request(addr, req.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::lenient_view;

    #[test]
    fn the_lenient_view() {
        for raw in [
            "/v1/admin",
            "/v1/admin/",
            "/v1/pets/../admin",
            "/v1/admin;x=1",
            "/v1/pets/..%2Fadmin",
            "/v1/pets/..\\admin",
            "/v1//adm%69n",
        ] {
            assert_eq!(lenient_view(raw).as_deref(), Some("/v1/admin"), "{raw}");
        }
        assert_eq!(lenient_view("/.."), None);
    }
}
