#!/usr/bin/env bash
# Builds {{name}}.wasm: wit-bindgen's C bindings of the `{{world}}` world, clang for
# wasm32-wasi as a reactor, then `wasm-tools component new` with the WASI preview1 adapter of
# the gateway's wasmtime (written here by `wicket plugin new`).
#
# Needs clang with wasm-ld and wasi-libc (Debian: apt-get install clang lld wasi-libc
# libclang-rt-dev-wasm32), and `cargo install --locked wit-bindgen-cli@0.46.0 wasm-tools@1.239.0`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
mkdir -p gen
wit-bindgen c --world {{world}} --out-dir gen wit
# -mexec-model=reactor: a library whose exports the host calls, not a command with a main.
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Wno-unused-parameter \
    -I gen -I . -o gen/core.wasm \
    plugin.c wicket_config.c gen/{{world}}.c gen/{{world}}_component_type.o
wasm-tools component new gen/core.wasm \
    --adapt wasi_snapshot_preview1=wasi_snapshot_preview1.reactor.wasm -o {{name}}.wasm
echo "built {{name}}.wasm"
