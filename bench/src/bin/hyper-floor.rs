//! The floor the gateway is measured against: a plain hyper 1.x reverse proxy with the same
//! hyper and hyper-util versions and the same client settings as Wicket's `http` forward
//! (pooled keep-alive, no Nagle), streaming both bodies, on one current-thread runtime.
//! Nothing else: no routing, no limits, no plugins. Usage: `hyper-floor LISTEN UPSTREAM`.

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:9000".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector);
        let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
        eprintln!(
            "hyper-floor listening on {}",
            listener.local_addr().unwrap()
        );
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let client = client.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service = service_fn(move |mut req: hyper::Request<Incoming>| {
                    let client = client.clone();
                    let path = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    let uri = format!("http://{upstream}{path}").parse().unwrap();
                    *req.uri_mut() = uri;
                    req.headers_mut().remove(hyper::header::HOST);
                    async move { client.request(req).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
