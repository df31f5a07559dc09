//! A filter that imports `wasi:missing/thing@0.2.0`, an interface in the WASI namespace that
//! no host provides (as a component built against a newer WASI than the host's would): the
//! gateway must refuse it at load naming the plugin, its config line and the import.

use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request};

wit_bindgen::generate!({
    inline: "
        package wasi:missing@0.2.0;
        interface thing {
            ping: func() -> u32;
        }
        world unlinkable {
            import thing;
        }
    ",
    world: "unlinkable",
});

struct Unlinkable;

impl Filter for Unlinkable {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(Unlinkable)
    }

    fn on_request(&self, _req: &Request, ctx: &Context) -> Result<Action, Error> {
        // Calling it keeps the import in the component.
        ctx.set("ping", &wasi::missing::thing::ping().to_string());
        Ok(Action::Continue)
    }
}

export_filter!(Unlinkable);
