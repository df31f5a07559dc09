//! Connection deadlines (issue 9): sockets that send nothing, only the HTTP/2 preface, or
//! finish a TLS handshake and go quiet, and keep-alive connections nobody uses, used to hold
//! their connection slot forever; thirty of them with `max_connections = 30` starved every
//! real client. Each now closes at its deadline, and a real client waits no longer than that.

use reqwest::StatusCode;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wicket_e2e::{Gateway, Upstream};

/// The deadlines under test, short so that the test is quick.
const HEAD_MS: u64 = 800;
const IDLE_MS: u64 = 1200;
/// What a starved client may wait at most: the longest deadline, plus scheduling slack.
const PATIENCE: Duration = Duration::from_millis(IDLE_MS + 2000);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: the client's side of an HTTP/2 connection start.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

fn config(upstream: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_connections = 30
header_read_timeout_ms = {HEAD_MS}
idle_timeout_ms = {IDLE_MS}
tls_handshake_timeout_ms = {HEAD_MS}
{extra}

[plugins.up]
builtin = "http"
config = {{ url = "http://{upstream}/x" }}

[[routes]]
path = "/x"
integration = "up"
"#
    )
}

/// Wait until the gateway closes `s` (read returns EOF or an error); how long that took.
fn closed_within(mut s: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("socket still open after {limit:?}")
            }
            Err(_) => return started.elapsed(),
        }
    }
}

/// A real request through `client`, timed.
async fn real_request(client: &reqwest::Client, url: &str) -> Duration {
    let started = Instant::now();
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    started.elapsed()
}

#[tokio::test]
async fn idle_plain_sockets_do_not_starve_clients() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, ""));
    let mut held = Vec::new();
    for i in 0..30 {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        match i % 3 {
            0 => {}
            1 => s.write_all(H2_PREFACE).unwrap(),
            _ => {
                s.write_all(H2_PREFACE).unwrap();
                s.write_all(H2_SETTINGS).unwrap();
            }
        }
        held.push(s);
    }
    // Every slot is taken: a real client queues until the idle ones are closed.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let waited = real_request(&client, &gw.url("/x")).await;
    assert!(waited < PATIENCE, "a real client waited {waited:?}");
    let checks: Vec<_> = held
        .into_iter()
        .map(|s| std::thread::spawn(move || closed_within(s, PATIENCE)))
        .collect();
    for c in checks {
        c.join().unwrap();
    }
}

#[tokio::test]
async fn unused_keep_alive_connections_are_closed() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(up.addr, ""));
    // Fifteen HTTP/1.1 connections that made one request and keep the connection, and
    // fifteen HTTP/2 connections that did the same.
    let mut held = Vec::new();
    for _ in 0..15 {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        let req = format!("GET /x HTTP/1.1\r\nHost: {}\r\n\r\n", gw.addr);
        s.write_all(req.as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 8192];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let mut h2 = Vec::new();
    for _ in 0..15 {
        h2.push(h2_connection_with_one_request(gw.addr).await);
    }
    let started = Instant::now();
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    real_request(&fresh, &gw.url("/x")).await;
    let waited = started.elapsed();
    assert!(waited < PATIENCE, "a real client waited {waited:?}");
    for s in held {
        closed_within(s, PATIENCE);
    }
    // The HTTP/2 connections end too: the gateway sends GOAWAY and closes them.
    for (conn, _sender) in h2 {
        let ended = tokio::time::timeout(PATIENCE, conn).await;
        assert!(ended.is_ok(), "an idle HTTP/2 connection is still open");
    }
}

/// An HTTP/2 connection that made one request and stays open; the handle ends when the
/// gateway closes the connection.
async fn h2_connection_with_one_request(
    addr: SocketAddr,
) -> (
    tokio::task::JoinHandle<()>,
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get(format!("http://{addr}/x"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    (conn, sender)
}

#[tokio::test]
async fn idle_tls_sockets_do_not_starve_clients() {
    let up = Upstream::start();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "[server.tls]\ncert = {:?}\nkey = {:?}",
        cert_path.display().to_string(),
        key_path.display().to_string()
    );
    let gw = Gateway::start(&config(up.addr, &tls));

    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let tls_config = |alpn: &[&[u8]]| {
        let mut c = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(c))
    };
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut plain = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..30 {
        let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        match i % 3 {
            // Connects and never starts the handshake.
            0 => plain.push(tcp),
            // Completes the handshake and sends nothing.
            1 => {
                let s = tls_config(&[b"http/1.1"])
                    .connect(name.clone(), tcp)
                    .await
                    .unwrap();
                sessions.push(s);
            }
            // Negotiates h2, sends the preface, and goes quiet.
            _ => {
                use tokio::io::AsyncWriteExt;
                let mut s = tls_config(&[b"h2"])
                    .connect(name.clone(), tcp)
                    .await
                    .unwrap();
                s.write_all(H2_PREFACE).await.unwrap();
                s.write_all(H2_SETTINGS).await.unwrap();
                s.flush().await.unwrap();
                sessions.push(s);
            }
        }
    }
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", gw.addr)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/x", gw.addr.port());
    let waited = real_request(&client, &url).await;
    assert!(waited < PATIENCE, "a real client waited {waited:?}");

    // Each held socket is closed by the gateway.
    use tokio::io::AsyncReadExt;
    let deadline = PATIENCE;
    for mut s in plain {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(deadline, s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "plain socket still open"
        );
    }
    for mut s in sessions {
        let mut buf = vec![0u8; 4096];
        let closed = tokio::time::timeout(deadline, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "TLS session still open");
    }
}
