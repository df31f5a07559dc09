//! # wicket-plugin-sdk
//!
//! Write [Wicket](https://example.invalid/wicket) gateway plugins in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` from a `cdylib` crate. It is
//! either
//!
//! * a **filter** ([`Filter`], exported with [`export_filter!`]): it runs on the way in
//!   ([`Filter::on_request`]) and on the way out ([`Filter::on_response`]) of every request of
//!   the routes that list it; or
//! * an **integration** ([`Integration`], exported with [`export_integration!`]): the last link
//!   of a route, which turns the request into a response.
//!
//! The plugin's value (`Self`) is built once per WebAssembly instance from the `config` table of
//! its `[plugins.NAME]` section (see [`Config`]), so a pooled instance parses its configuration
//! once and serves many requests with it.
//!
//! Capabilities are thin wrappers over the host imports: [`log`] and [`Config`] are always
//! granted, [`kv`], [`counters`], [`http`] and [`metrics`] need a grant. A capability the plugin
//! never calls is not imported by the component, so it needs no grant.
//!
//! ```ignore
//! use wicket_plugin_sdk::{export_filter, Action, Config, Context, Error, Filter, Request};
//!
//! struct RequireHeader { name: String }
//!
//! impl Filter for RequireHeader {
//!     fn new(config: Config) -> Result<Self, String> {
//!         Ok(Self { name: config.str_or("header", "x-api-key").to_owned() })
//!     }
//!
//!     fn on_request(&self, req: &Request, _ctx: &Context) -> Result<Action, Error> {
//!         match req.header(&self.name) {
//!             Some(_) => Ok(Action::Continue),
//!             None => Err(Error::new(401, format!("missing header {}", self.name))),
//!         }
//!     }
//! }
//!
//! export_filter!(RequireHeader);
//! ```

#![warn(missing_docs)]

// `#[derive(ConfigKeys)]` names `::wicket_plugin_sdk`; let that path work inside the SDK too.
extern crate self as wicket_plugin_sdk;

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "sigv4")]
/// AWS Signature Version 4: the `wicket-sigv4` crate, which the gateway signs with too.
pub use wicket_sigv4 as sigv4;
pub mod aws;
pub mod body;
mod config;
pub mod counters;
pub mod describe;
mod error;
pub mod header;
pub mod http;
pub mod kv;
pub mod log;
pub mod metrics;
pub mod query;
mod resources;
pub mod rule;
pub mod source;
pub mod template;
pub mod throttle;

#[doc(hidden)]
pub mod filter_bindings {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "../wit",
        world: "wicket:plugin/filter@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_filter_world",
        default_bindings_module: "wicket_plugin_sdk::filter_bindings",
        generate_all,
    });
}

#[doc(hidden)]
pub mod integration_bindings {
    #![allow(missing_docs)]
    // Same imports and types as the filter world: `Request`, `Response`, `Context`, ... are one
    // type for both kinds of plugin.
    wit_bindgen::generate!({
        path: "../wit",
        world: "wicket:plugin/integration@0.1.0",
        with: {
            "wicket:plugin/types@0.1.0": crate::filter_bindings::wicket::plugin::types,
            "wicket:plugin/log@0.1.0": crate::filter_bindings::wicket::plugin::log,
            "wicket:plugin/config@0.1.0": crate::filter_bindings::wicket::plugin::config,
            "wicket:plugin/kv@0.1.0": crate::filter_bindings::wicket::plugin::kv,
            "wicket:plugin/counters@0.1.0": crate::filter_bindings::wicket::plugin::counters,
            "wicket:plugin/http@0.1.0": crate::filter_bindings::wicket::plugin::http,
            "wicket:plugin/metrics@0.1.0": crate::filter_bindings::wicket::plugin::metrics,
            "wicket:plugin/aws@0.1.0": crate::filter_bindings::wicket::plugin::aws,
            "wicket:plugin/description@0.1.0": crate::filter_bindings::wicket::plugin::description,
        },
        pub_export_macro: true,
        export_macro_name: "__export_integration_world",
        default_bindings_module: "wicket_plugin_sdk::integration_bindings",
    });
}

pub(crate) use filter_bindings::wicket::plugin as wit;

pub use config::Config;
pub use describe::{BodyUse, ConfigKeys, Description, Forward, HeaderEdits, Plan, SignSpec};
pub use filter_bindings::exports::wicket::plugin::hooks::Action;
pub use serde_json;
pub use template::render_template;
pub use wit::types::{Context, Error, Request, Response};

/// A filter: runs on the way in and on the way out of each request of the routes listing it.
///
/// The phases are listed in the order they run. Every phase has a default body that does
/// nothing, so a filter implements only the phases it needs. Export the type with
/// [`export_filter!`].
///
/// On the way in, the filters of a route run in the order the route lists them; on the way out,
/// in reverse order.
pub trait Filter: Sized + 'static {
    /// Builds the filter from its `config` table.
    ///
    /// Runs once per WebAssembly instance, before the first hook that instance serves: with
    /// `isolation = "pooled"` the value is reused for many requests, with
    /// `isolation = "request"` it is built for every request. Parse and validate the whole
    /// configuration here (see [`Config::parse`]) so that hooks never fail on bad settings.
    ///
    /// An `Err` is the reason the configuration is unusable: it is logged, and every hook of
    /// this instance then answers the client with `500 plugin configuration error`.
    fn new(config: Config) -> Result<Self, String>;

    /// What the plugin is, whatever its config: summary, capabilities, config keys (usually
    /// `Description::new("...").config::<Settings>()`), roles. Read once by the host at load
    /// and by `wicket plugins`. The default declares nothing, so the host checks no keys.
    fn describe() -> Description {
        Description::default()
    }

    /// What this configured instance does: which hooks do something, whether they need a body
    /// whole, header edits the host can apply itself. Asked once at load, after [`Filter::new`]
    /// succeeded. The default calls both hooks and reads no body (a body asked for anyway is
    /// buffered then).
    fn plan(&self) -> Plan {
        Plan::default()
    }

    /// Runs before the integration, after the filters listed before this one.
    ///
    /// May read and change the request (path, query, headers, body) and the context (e.g. set
    /// `principal` for the filters and the integration after it).
    ///
    /// * `Ok(Action::Continue)`: go on with the next filter, then the integration.
    /// * `Ok(Action::Respond(response))`: answer the client with `response` now. Later filters
    ///   and the integration are skipped; the `on_response` of this filter and of the filters
    ///   before it still run.
    /// * `Err(error)`: answer the client with `error.status` and a JSON body carrying
    ///   `error.message` (see [`Error`]); `on_response` hooks do not see it.
    ///
    /// The default continues.
    fn on_request(&self, req: &Request, ctx: &Context) -> Result<Action, Error> {
        let _ = (req, ctx);
        Ok(Action::Continue)
    }

    /// Runs after the integration produced the response (or after a filter answered), in
    /// reverse order: the last filter of the route first.
    ///
    /// May change the response's status, headers and body; the request and the context are
    /// those the integration saw.
    ///
    /// * `Ok(())`: go on with the `on_response` of the previous filter, then answer the client.
    /// * `Err(error)`: replace the response with `error` (see [`Error`]).
    ///
    /// The default does nothing.
    fn on_response(&self, req: &Request, resp: &Response, ctx: &Context) -> Result<(), Error> {
        let _ = (req, resp, ctx);
        Ok(())
    }
}

/// An integration: the last link of a route, which turns the request into a response.
///
/// Export the type with [`export_integration!`].
pub trait Integration: Sized + 'static {
    /// Builds the integration from its `config` table; see [`Filter::new`].
    fn new(config: Config) -> Result<Self, String>;

    /// What the plugin is; see [`Filter::describe`].
    fn describe() -> Description {
        Description::default()
    }

    /// What this configured instance does; see [`Filter::plan`]. An integration whose whole
    /// behaviour is a forward returns [`Plan::forward`], and the host runs it without calling
    /// [`Integration::handle`].
    fn plan(&self) -> Plan {
        Plan::default()
    }

    /// Produces the response for `req`, e.g. by calling a backend through [`http`].
    ///
    /// Runs after every filter's `on_request` continued. The response returned goes through
    /// the filters' `on_response` hooks, then to the client. An `Err` answers the client with
    /// `error.status` and a JSON body carrying `error.message`.
    fn handle(&self, req: &Request, ctx: &Context) -> Result<Response, Error>;
}

/// Exports a [`Filter`] implementation as the component's `wicket:plugin/hooks` interface.
///
/// Use it once, in the plugin's `cdylib` crate: `export_filter!(MyFilter);`. The value is built
/// lazily with [`Filter::new`] on the first hook of each WebAssembly instance and kept for the
/// instance's lifetime.
///
/// On targets other than `wasm32` the macro only checks that the type implements [`Filter`],
/// so the plugin crate still compiles (and its unit tests run) on the build machine.
#[macro_export]
macro_rules! export_filter {
    ($ty:ty) => {
        const _: () = {
            #[allow(dead_code)]
            fn __wicket_assert_filter<T: $crate::Filter>() {}
            #[allow(dead_code)]
            fn __wicket_check() {
                __wicket_assert_filter::<$ty>();
            }
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static __WICKET_INSTANCE: $crate::__private::InstanceCell<$ty> =
                $crate::__private::InstanceCell::new();

            struct __WicketFilterExport;

            impl $crate::__private::HooksGuest for __WicketFilterExport {
                fn check_config() -> ::core::result::Result<(), ::std::string::String> {
                    __WICKET_INSTANCE.check(<$ty as $crate::Filter>::new)
                }

                fn on_request(
                    req: &$crate::Request,
                    ctx: &$crate::Context,
                ) -> ::core::result::Result<$crate::Action, $crate::Error> {
                    let filter = __WICKET_INSTANCE.get(<$ty as $crate::Filter>::new)?;
                    <$ty as $crate::Filter>::on_request(filter, req, ctx)
                }

                fn on_response(
                    req: &$crate::Request,
                    resp: &$crate::Response,
                    ctx: &$crate::Context,
                ) -> ::core::result::Result<(), $crate::Error> {
                    let filter = __WICKET_INSTANCE.get(<$ty as $crate::Filter>::new)?;
                    <$ty as $crate::Filter>::on_response(filter, req, resp, ctx)
                }
            }

            impl $crate::__private::FilterWorldGuest for __WicketFilterExport {
                fn describe() -> $crate::__private::description::Description {
                    <$ty as $crate::Filter>::describe().into()
                }

                fn plan() -> $crate::__private::description::InstancePlan {
                    match __WICKET_INSTANCE.get(<$ty as $crate::Filter>::new) {
                        Ok(filter) => <$ty as $crate::Filter>::plan(filter).into(),
                        Err(_) => $crate::Plan::default().into(),
                    }
                }
            }

            $crate::filter_bindings::__export_filter_world!(
                __WicketFilterExport with_types_in $crate::filter_bindings
            );
        };
    };
}

/// Exports an [`Integration`] implementation as the component's `wicket:plugin/handler`
/// interface.
///
/// Use it once, in the plugin's `cdylib` crate: `export_integration!(MyIntegration);`. The value
/// is built lazily with [`Integration::new`] on the first request of each WebAssembly instance
/// and kept for the instance's lifetime.
///
/// On targets other than `wasm32` the macro only checks that the type implements
/// [`Integration`].
#[macro_export]
macro_rules! export_integration {
    ($ty:ty) => {
        const _: () = {
            #[allow(dead_code)]
            fn __wicket_assert_integration<T: $crate::Integration>() {}
            #[allow(dead_code)]
            fn __wicket_check() {
                __wicket_assert_integration::<$ty>();
            }
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static __WICKET_INSTANCE: $crate::__private::InstanceCell<$ty> =
                $crate::__private::InstanceCell::new();

            struct __WicketIntegrationExport;

            impl $crate::__private::HandlerGuest for __WicketIntegrationExport {
                fn check_config() -> ::core::result::Result<(), ::std::string::String> {
                    __WICKET_INSTANCE.check(<$ty as $crate::Integration>::new)
                }

                fn handle(
                    req: &$crate::Request,
                    ctx: &$crate::Context,
                ) -> ::core::result::Result<$crate::Response, $crate::Error> {
                    let integration = __WICKET_INSTANCE.get(<$ty as $crate::Integration>::new)?;
                    <$ty as $crate::Integration>::handle(integration, req, ctx)
                }
            }

            impl $crate::__private::IntegrationWorldGuest for __WicketIntegrationExport {
                fn describe() -> $crate::__private::description::Description {
                    <$ty as $crate::Integration>::describe().into()
                }

                fn plan() -> $crate::__private::description::InstancePlan {
                    match __WICKET_INSTANCE.get(<$ty as $crate::Integration>::new) {
                        Ok(integration) => <$ty as $crate::Integration>::plan(integration).into(),
                        Err(_) => $crate::Plan::default().into(),
                    }
                }
            }

            $crate::integration_bindings::__export_integration_world!(
                __WicketIntegrationExport with_types_in $crate::integration_bindings
            );
        };
    };
}

/// Support for the export macros; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::cell::OnceCell;

    pub use crate::filter_bindings::exports::wicket::plugin::hooks::Guest as HooksGuest;
    pub use crate::filter_bindings::wicket::plugin::description;
    pub use crate::filter_bindings::Guest as FilterWorldGuest;
    pub use crate::integration_bindings::exports::wicket::plugin::handler::Guest as HandlerGuest;
    pub use crate::integration_bindings::Guest as IntegrationWorldGuest;
    use crate::{Config, Error};

    /// The plugin value of one WebAssembly instance, built on first use.
    pub struct InstanceCell<T> {
        cell: OnceCell<Result<T, String>>,
    }

    // SAFETY: a `wasm32-wasip2` component instance is single-threaded (the target has no
    // threads), so the cell is never accessed concurrently. The export macros only create it
    // on `wasm32`.
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    unsafe impl<T> Sync for InstanceCell<T> {}

    impl<T> InstanceCell<T> {
        /// An empty cell.
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            Self {
                cell: OnceCell::new(),
            }
        }

        /// The plugin value, built with `build` from the instance's config on first use. When
        /// the configuration is rejected, logs why and returns the client-facing error.
        /// Build the value (once) and report why the config is unusable, if it is.
        pub fn check(&self, build: fn(Config) -> Result<T, String>) -> Result<(), String> {
            match self.cell.get_or_init(|| Config::load().and_then(build)) {
                Ok(_) => Ok(()),
                Err(reason) => Err(reason.clone()),
            }
        }

        pub fn get(&self, build: fn(Config) -> Result<T, String>) -> Result<&T, Error> {
            let built = self.cell.get_or_init(|| Config::load().and_then(build));
            match built {
                Ok(value) => Ok(value),
                Err(reason) => {
                    crate::log::error(&format!("plugin configuration error: {reason}"));
                    Err(Error::configuration())
                }
            }
        }
    }
}
