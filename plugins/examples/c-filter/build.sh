#!/usr/bin/env bash
# Builds the C example filter into a WebAssembly component.
#
#     plugins/examples/c-filter/build.sh OUT.wasm
#
# Needs clang with wasm-ld and wasi-libc (Debian: apt-get install clang lld wasi-libc
# libclang-rt-dev-wasm32), wit-bindgen 0.46 and wasm-tools 1.239 (cargo install --locked
# wit-bindgen-cli@0.46.0 wasm-tools@1.239.0), and the WASI preview1 reactor adapter of the
# gateway's wasmtime (48): $WASI_ADAPTER, else wasi_snapshot_preview1.reactor.wasm here
# (`wicket plugin new x --lang c` writes one; it also comes in the crate
# wasi-preview1-component-adapter-provider 48).
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 OUT.wasm" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="$1"
case "$out" in
    /*) ;;
    *) out="$PWD/$out" ;;
esac
adapter="${WASI_ADAPTER:-$here/wasi_snapshot_preview1.reactor.wasm}"
[ -f "$adapter" ] || {
    echo "$0: no WASI preview1 adapter at $adapter (set WASI_ADAPTER)" >&2
    exit 1
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# C bindings of the `filter` world: filter.h, filter.c and filter_component_type.o (the
# world's type, which `component new` reads).
wit-bindgen c --world filter --out-dir "$work" "$repo/wit"
# A reactor (-mexec-model=reactor): a library whose exports the host calls, not a command
# with a main; without it `component new` finds nothing to lift.
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
    -Wno-unused-parameter -I "$work" -I "$here" \
    -o "$work/core.wasm" \
    "$here/filter.c" "$here/hmac_sha256.c" "$here/wicket_config.c" \
    "$work/filter.c" "$work/filter_component_type.o"
mkdir -p "$(dirname "$out")"
wasm-tools component new "$work/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
echo "built $out"
