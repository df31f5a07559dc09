#!/usr/bin/env bash
# Builds {{name}}.wasm with componentize-js (`npm install` here, or one on PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PATH="$PWD/node_modules/.bin:$PATH"
componentize-js plugin.js -w wit -n {{world}} -o {{name}}.wasm
echo "built {{name}}.wasm"
