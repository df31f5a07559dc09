//! Open-loop load generator with latency correction: request i is due at start + i/rate,
//! and its latency is counted from when it was due, not from when a connection was free, so
//! a stalled server shows up in the tail instead of quietly lowering the offered load.
//!
//! Usage: `loadgen URL RATE SECONDS [CONNECTIONS]`. Prints one JSON object.
//! Bounded: it sends at most RATE * SECONDS requests and stops after SECONDS + 5 s.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: loadgen URL RATE SECONDS [CONNECTIONS]");
        std::process::exit(2);
    }
    let url: hyper::Uri = args[1].parse().expect("URL");
    let rate: f64 = args[2].parse().expect("RATE");
    let seconds: f64 = args[3].parse().expect("SECONDS");
    let connections: usize = args
        .get(4)
        .map(|c| c.parse().expect("CONNECTIONS"))
        .unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run(url, rate, seconds, connections));
    println!("{report}");
}

async fn run(url: hyper::Uri, rate: f64, seconds: f64, connections: usize) -> serde_json::Value {
    let total = (rate * seconds) as u64;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let authority = url.authority().unwrap().clone();
    let path = url
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or("/".into());
    let mut workers = Vec::new();
    for _ in 0..connections {
        let rx = rx.clone();
        let latencies = latencies.clone();
        let errors = errors.clone();
        let authority = authority.clone();
        let path = path.clone();
        workers.push(tokio::spawn(async move {
            let mut sender = None;
            loop {
                let due = { rx.lock().await.recv().await };
                let Some(due) = due else { break };
                if sender.is_none() {
                    sender = connect(authority.as_str()).await;
                }
                let Some(s) = sender.as_mut() else {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                };
                let req = hyper::Request::get(path.as_str())
                    .header("host", authority.as_str())
                    // The realistic-chain arm's API key; other arms ignore it.
                    .header("x-api-key", "bench")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let ok = match s.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        resp.into_body().collect().await.is_ok() && status.is_success()
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies
                        .lock()
                        .unwrap()
                        .push(due.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    sender = None;
                }
            }
        }));
    }
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        if tx.send(due).is_err() {
            break;
        }
    }
    drop(tx);
    let deadline = Duration::from_secs_f64(seconds + 5.0);
    let _ = tokio::time::timeout(deadline.saturating_sub(start.elapsed()), async {
        for w in workers {
            let _ = w.await;
        }
    })
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let pct = |p: f64| -> u64 {
        if l.is_empty() {
            return 0;
        }
        l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1]
    };
    serde_json::json!({
        "offered_rps": rate,
        "achieved_rps": l.len() as f64 / elapsed,
        "sent": total,
        "ok": l.len(),
        "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": l.last().copied().unwrap_or(0),
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(authority: &str) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}
