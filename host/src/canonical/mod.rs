//! The one form of a request's path and host that everything downstream works on.
//!
//! A gateway that routes on one spelling of a path and forwards another lets an upstream
//! that normalizes (nginx, Tomcat, Spring, IIS) serve a protected page through a public
//! route: `/v1/pets/../admin` matches `/v1/{proxy+}` but nginx serves `/v1/admin`. So the
//! path and host are made canonical once, before routing, and the router, the plugins
//! (`RequestData.path`) and the `http` integration's path parameters all use that one
//! result. What cannot be made unambiguous is refused with 400.

pub mod authority;
pub mod path;

pub use authority::{Authority, HostError};
pub use path::{canonical_path, PathError, PathRules, Semicolons};

#[cfg(test)]
mod proptests;
