//! A filter that misbehaves on demand, for testing the host's isolation. The request header
//! `x-misbehave` selects the behaviour of `on-request`:
//!
//! * `trap`: panics, which traps the instance;
//! * `loop`: spins forever (the host must interrupt it);
//! * `oom`: allocates and touches 1 MiB blocks until the allocation fails (up to 4 GiB, more
//!   than a wasm32 memory can hold), which traps;
//! * `error`: returns `Error { status: 503, message: "misbehave error" }`;
//! * `rewrite-body`: replaces the request body with `rewritten`, leaving `Content-Length`;
//! * absent: continues, and `on-response` sets the response header `x-misbehave: ok`.
//!
//! Any other value continues without touching the response.

use std::hint::black_box;

use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request, Response};

const HEADER: &str = "x-misbehave";
const MIB: usize = 1 << 20;

struct Misbehave;

impl Filter for Misbehave {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(Misbehave)
    }

    fn on_request(&self, req: &Request, _ctx: &Context) -> Result<Action, Error> {
        match req.header(HEADER).as_deref() {
            Some("trap") => panic!("misbehave: trap requested"),
            Some("loop") => spin(),
            Some("oom") => exhaust_memory(),
            Some("error") => Err(Error::new(503, "misbehave error")),
            Some("print") => {
                // Plugin output becomes log lines (one per line; the last one without a
                // newline when the instance goes away).
                println!("misbehave says hello");
                eprint!("to stderr\nand a partial line");
                Ok(Action::Continue)
            }
            Some("chatter") => {
                for i in 0..1000 {
                    println!("chatter {i}");
                }
                Ok(Action::Continue)
            }
            Some("rewrite-body") => {
                // Replace the body without touching Content-Length: the host must fix it.
                req.set_body(b"rewritten");
                Ok(Action::Continue)
            }
            _ => Ok(Action::Continue),
        }
    }

    fn on_response(&self, req: &Request, resp: &Response, _ctx: &Context) -> Result<(), Error> {
        if req.header(HEADER).is_none() {
            resp.set_header(HEADER, "ok")
                .map_err(|_| Error::internal())?;
        }
        Ok(())
    }
}

/// Never returns; `black_box` keeps the optimizer from removing the loop.
fn spin() -> ! {
    loop {
        black_box(());
    }
}

/// Allocates and touches 1 MiB blocks, keeping them alive, until allocation fails (which
/// aborts, i.e. traps). Returns an error only if 4 GiB somehow fit.
fn exhaust_memory() -> Result<Action, Error> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for i in 0..4096usize {
        let mut block = Vec::<u8>::with_capacity(MIB);
        // Touch every page so the memory is really used.
        block.resize(MIB, (i % 251) as u8 + 1);
        for page in block.chunks_mut(4096) {
            page[0] = black_box(page[0]).wrapping_add(1);
        }
        blocks.push(black_box(block));
    }
    black_box(&blocks);
    Err(Error::new(500, "misbehave: memory was not exhausted"))
}

export_filter!(Misbehave);
