#!/usr/bin/env bash
# Builds the JavaScript example filter into a WebAssembly component, with componentize-js's
# default features (its `wasi:http` imports included).
#
#     plugins/examples/js-filter/build.sh OUT.wasm
#
# Needs componentize-js on PATH (npm install @bytecodealliance/componentize-js@0.23.0).
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
mkdir -p "$(dirname "$out")"
componentize-js "$here/filter.js" -w "$repo/wit" -n minimal-filter -o "$out"
echo "built $out"
