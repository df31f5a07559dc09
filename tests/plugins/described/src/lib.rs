//! A filter written as a third-party author would, declaring its config keys once on the type
//! that parses them: the gateway checks a config against them exactly as it checks a
//! built-in's.

use serde::Deserialize;
use wicket_plugin_sdk::{
    export_filter, Action, Config, ConfigKeys, Context, Description, Error, Filter, Plan, Request,
};

#[derive(Deserialize, ConfigKeys)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// the greeting put in x-greeting
    greeting: String,
    /// how many times it is repeated, default 1
    #[serde(default)]
    times: Option<u32>,
}

struct Greeter {
    value: String,
}

impl Filter for Greeter {
    fn describe() -> Description {
        Description::new("greets each request in a header").config::<Settings>()
    }

    fn new(config: Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        Ok(Greeter {
            value: s.greeting.repeat(s.times.unwrap_or(1) as usize),
        })
    }

    fn plan(&self) -> Plan {
        Plan::default().on_response(false)
    }

    fn on_request(&self, req: &Request, _ctx: &Context) -> Result<Action, Error> {
        req.set_header("x-greeting", &self.value)
            .map_err(|_| Error::internal())?;
        Ok(Action::Continue)
    }
}

export_filter!(Greeter);
