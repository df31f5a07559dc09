//! A filter that shows where state lives. On every request it increments `hits` in the shared
//! `kv` store (grant: `kv`) and a counter inside its own instance, and reports both on the
//! response: `x-hits` (shared, grows across instances) and `x-instance-calls` (1 with a fresh
//! instance per request, growing when instances are pooled).

use std::cell::Cell;
use wicket_plugin_sdk::{
    export_filter, kv, Action, Config, Context, Error, Filter, Request, Response,
};

struct KvCounter {
    calls: Cell<u64>,
}

impl Filter for KvCounter {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(KvCounter {
            calls: Cell::new(0),
        })
    }

    fn on_request(&self, _req: &Request, ctx: &Context) -> Result<Action, Error> {
        let hits = kv::get_string("hits")
            .map_err(|_| Error::internal())?
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        kv::set_string("hits", &hits.to_string(), None).map_err(|_| Error::internal())?;
        self.calls.set(self.calls.get() + 1);
        ctx.set("counter.hits", &hits.to_string());
        Ok(Action::Continue)
    }

    fn on_response(&self, _req: &Request, resp: &Response, ctx: &Context) -> Result<(), Error> {
        let hits = ctx.get("counter.hits").unwrap_or_default();
        resp.set_header("x-hits", &hits)
            .map_err(|_| Error::internal())?;
        resp.set_header("x-instance-calls", &self.calls.get().to_string())
            .map_err(|_| Error::internal())?;
        Ok(())
    }
}

export_filter!(KvCounter);
