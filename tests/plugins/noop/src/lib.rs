//! A filter whose hooks do nothing: what it costs is what any plugin costs (instantiation or
//! pool checkout, the calls across the component boundary, the resource handoff).

use wicket_plugin_sdk::{export_filter, Config, Filter};

struct Noop;

impl Filter for Noop {
    fn new(_config: Config) -> Result<Self, String> {
        Ok(Noop)
    }
}

export_filter!(Noop);
