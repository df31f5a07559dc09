//! The capabilities a config can grant a plugin: one WIT import interface each. They live with
//! the config (which parses `grants`); the runtime checks imports and calls against them.

/// A capability a plugin can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Log,
    Config,
    Kv,
    Counters,
    Http,
    Metrics,
    /// Requests signed with the gateway's AWS credentials (never readable by the plugin).
    Aws,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::Log,
        Capability::Config,
        Capability::Kv,
        Capability::Counters,
        Capability::Http,
        Capability::Metrics,
        Capability::Aws,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Config => "config",
            Capability::Kv => "kv",
            Capability::Counters => "counters",
            Capability::Http => "http",
            Capability::Metrics => "metrics",
            Capability::Aws => "aws",
        }
    }

    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The capability's bit in a plugin's grant mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}
