#!/usr/bin/env bash
# Builds the Python example function into a WebAssembly component.
#
#     plugins/examples/python-function/build.sh OUT.wasm
#
# Needs componentize-py (pip install componentize-py==0.25.0).
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

# The function's own world (wit/world.wit) with the gateway's contract as its dependency.
wit="$(mktemp -d)"
trap 'rm -rf "$wit"' EXIT
cp "$here/wit/world.wit" "$wit/"
mkdir -p "$wit/deps/wicket-plugin"
cp "$repo"/wit/*.wit "$wit/deps/wicket-plugin/"
world="example:python-function/function"

cd "$here"
componentize-py -d "$wit" -w "$world" componentize -p "$here" app -o "$out"
echo "built $out"
