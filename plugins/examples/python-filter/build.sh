#!/usr/bin/env bash
# Builds the Python example filter into a WebAssembly component.
#
#     plugins/examples/python-filter/build.sh OUT.wasm
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

world="wicket:plugin/minimal-filter@0.1.0"

# Stub bindings for editors and type checkers (componentize generates the real ones itself).
if [ ! -d "$here/bindings/wit_world" ] || [ -n "$(find "$repo/wit" -newer "$here/bindings/wit_world" -name '*.wit')" ]; then
    rm -rf "$here/bindings"
    componentize-py -d "$repo/wit" -w "$world" bindings "$here/bindings"
fi

cd "$here"
componentize-py -d "$repo/wit" -w "$world" componentize -p "$here" app -o "$out"
echo "built $out"
