#!/usr/bin/env bash
# Builds Wicket's plugins (plugins/) and the test plugins (tests/plugins/) for wasm32-wasip2 in
# release mode, each workspace into its own target directory:
#
#     plugins/target/wasm32-wasip2/release/wicket_plugin_{http,mock,headers}.wasm
#     tests/plugins/target/wasm32-wasip2/release/misbehave.wasm
#
# Extra arguments go to both cargo commands (e.g. --locked). Needs the target:
#     rustup target add wasm32-wasip2
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

for workspace in "$repo/plugins" "$repo/tests/plugins"; do
    echo "building $workspace" >&2
    # Run from the workspace, without CARGO_TARGET_DIR, so that it uses its own target directory.
    (cd "$workspace" && env -u CARGO_TARGET_DIR cargo build --release --target wasm32-wasip2 --workspace "$@")
done

ls -l "$repo"/plugins/target/wasm32-wasip2/release/*.wasm \
    "$repo"/tests/plugins/target/wasm32-wasip2/release/*.wasm >&2
