#!/usr/bin/env bash
# Builds {{name}}.wasm, a WebAssembly component for wasm32-wasip2 (rust-toolchain.toml
# names the toolchain and the target: rustup installs them on first use).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
cargo build --release --target wasm32-wasip2
target="${CARGO_TARGET_DIR:-target}"
cp "$target/wasm32-wasip2/release/{{ident}}.wasm" {{name}}.wasm
echo "built {{name}}.wasm"
