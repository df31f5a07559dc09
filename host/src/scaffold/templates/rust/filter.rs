//! {{name}}: a Wicket filter.
//!
//! * on-request: sets the context key `{{name}}.seen = "yes"` (later plugins and the
//!   integration see it); a request with `x-{{name}}-block: 1` is answered 403.
//! * on-response: sets the response header `x-{{name}}` to the config key `greeting`.

use serde::Deserialize;
use wicket_plugin_sdk::{
    export_filter, Action, Config, ConfigKeys, Context, Description, Error, Filter, Request,
    Response,
};

/// The plugin's `config` table, checked once per instance (`wicket check` reports an unknown
/// or missing key at its line).
#[derive(Deserialize, ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// value of the x-{{name}} response header
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "hello".to_string()
}

struct Plugin {
    settings: Settings,
}

impl Filter for Plugin {
    fn describe() -> Description {
        Description::new("{{name}}: marks the context, greets every response").config::<Settings>()
    }

    fn new(config: Config) -> Result<Self, String> {
        Ok(Plugin {
            settings: config.parse()?,
        })
    }

    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        if req.header("x-{{name}}-block").as_deref() == Some("1") {
            wicket_plugin_sdk::info!("blocked {}", req.path());
            return Err(Error::new(403, "blocked by {{name}}"));
        }
        ctx.set("{{name}}.seen", "yes");
        Ok(Action::Continue)
    }

    fn on_response(&self, _req: &Request, resp: &Response, _ctx: &Context) -> Result<(), Error> {
        let _ = resp.set_header("x-{{name}}", &self.settings.greeting);
        Ok(())
    }
}

export_filter!(Plugin);
