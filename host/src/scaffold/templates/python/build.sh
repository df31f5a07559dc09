#!/usr/bin/env bash
# Builds {{name}}.wasm with componentize-py (pip install componentize-py==0.25.0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
componentize-py -d wit -w "wicket:plugin/{{world}}@0.1.0" componentize -p . app -o {{name}}.wasm
echo "built {{name}}.wasm"
