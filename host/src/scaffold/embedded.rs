//! What `wicket plugin new` copies out of the binary: the WIT contract, the Rust SDK's
//! sources (both listed by `build.rs`) and the repository's `rust-toolchain.toml` (the Rust
//! and the `wasm32-wasip2` target the SDK is built and tested with).

include!(concat!(env!("OUT_DIR"), "/author_sources.rs"));

pub const RUST_TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");
