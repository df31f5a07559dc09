//! Host bindings generated from `wit/`. The `filter` world is generated once; the
//! `integration` world reuses its interfaces so both worlds share one set of host traits and
//! resource types. The host loads each export (hooks, handler, describe, plan) on its own, so
//! a component needs only the ones it has: `describe` and `plan` are optional.

mod filter_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "filter",
        imports: {
            "wicket:plugin/http.send": async | trappable,
            "wicket:plugin/kv": async | trappable,
            "wicket:plugin/counters": async | trappable,
            // Asking for a streaming body reads it (bounded) then.
            "wicket:plugin/types.[method]request.body": async | trappable,
            "wicket:plugin/types.[method]response.body": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "wicket:plugin/types.request": crate::capabilities::types::RequestData,
            "wicket:plugin/types.response": crate::capabilities::types::ResponseData,
            "wicket:plugin/types.context": crate::capabilities::types::ContextData,
            "wicket:plugin/http.outgoing-request": crate::capabilities::http::OutgoingRequest,
        },
    });
}

mod integration_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "integration",
        exports: { default: async },
        with: {
            "wicket:plugin/types": super::filter_world::wicket::plugin::types,
            "wicket:plugin/log": super::filter_world::wicket::plugin::log,
            "wicket:plugin/config": super::filter_world::wicket::plugin::config,
            "wicket:plugin/kv": super::filter_world::wicket::plugin::kv,
            "wicket:plugin/counters": super::filter_world::wicket::plugin::counters,
            "wicket:plugin/http": super::filter_world::wicket::plugin::http,
            "wicket:plugin/metrics": super::filter_world::wicket::plugin::metrics,
            "wicket:plugin/aws": super::filter_world::wicket::plugin::aws,
            "wicket:plugin/description": super::filter_world::wicket::plugin::description,
        },
    });
}

pub use filter_world::exports::wicket::plugin::hooks;
pub use filter_world::exports::wicket::plugin::hooks::Action;
pub use filter_world::wicket::plugin::{
    aws, config, counters, description, http, kv, log, metrics, types,
};
pub use filter_world::Filter;
pub use integration_world::exports::wicket::plugin::handler;
