//! {{name}}: a Wicket integration (the last link of a route): answers every request with
//! JSON `{"greeting", "method", "path", "request_id"}`.

use serde::{Deserialize, Serialize};
use wicket_plugin_sdk::{
    export_integration, Config, ConfigKeys, Context, Description, Error, Integration, Request,
    Response,
};

/// The plugin's `config` table.
#[derive(Deserialize, ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// the greeting every answer carries
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "hello".to_string()
}

/// What every answer says.
#[derive(Serialize)]
struct Answer<'a> {
    greeting: &'a str,
    method: String,
    path: String,
    request_id: Option<String>,
}

struct Plugin {
    settings: Settings,
}

impl Integration for Plugin {
    fn describe() -> Description {
        Description::new("{{name}}: answers with a greeting").config::<Settings>()
    }

    fn new(config: Config) -> Result<Self, String> {
        Ok(Plugin {
            settings: config.parse()?,
        })
    }

    fn handle(&self, req: &Request, ctx: &Context) -> Result<Response, Error> {
        let answer = Answer {
            greeting: &self.settings.greeting,
            method: req.method(),
            path: req.path(),
            request_id: ctx.request_id(),
        };
        Ok(Response::json(200, &answer))
    }
}

export_integration!(Plugin);
