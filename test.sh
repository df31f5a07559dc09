#!/usr/bin/env bash
# The test command: ./test.sh
#
# Installs what the tests need and is missing, then runs every test:
#   - the Rust toolchain of rust-toolchain.toml with its wasm32-wasip2 target (rustup);
#   - redis-server, for the shared-state tests, nginx, a real path-normalizing upstream for
#     the request-hardening tests, and chromium with chromium-driver, the browser of the
#     portal's test (apt-get when run as root; otherwise it says how to install them and stops
#     before building anything);
#   - the Python tools, in a virtual environment inside the target directory (never the
#     system Python): componentize-py (builds the Python example plugin), botocore and PyJWT
#     (outside signers in the auth tests), prometheus-client (parses /metrics),
#     openapi-spec-validator (checks exported OpenAPI documents), selenium (drives chromium
#     through chromium-driver in the portal's test) and moto[server] (S3 and DynamoDB checking
#     the gateway's SigV4 signatures in the AWS tests);
#   - componentize-js (builds the JavaScript example filter), with npm into the target directory
#     (nodejs and npm from apt-get when run as root and missing);
#   - the C toolchain of the C example and scaffold: clang, lld, wasi-libc and the wasm32
#     compiler-rt builtins (apt-get when root), and wit-bindgen-cli and wasm-tools with
#     `cargo install --locked` into the target directory (once: about 6 minutes on 2 cores).
# Then: `cargo test --workspace --no-fail-fast`, and the plugins' and the SDK's native unit
# tests. Every step runs even when an earlier one fails; the exit status says whether all
# passed. Running it again installs nothing.
#
# CARGO_TARGET_DIR is honoured (default: ./target). WICKET_BUILD_LOCK=<file>, if set, makes the
# compile steps take that flock(1) lock, for machines where several checkouts share the cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root="$PWD"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
case "$CARGO_TARGET_DIR" in
    /*) ;;
    *) CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR" ;;
esac
venv="$CARGO_TARGET_DIR/python-venv"
js_tools=("@bytecodealliance/componentize-js@0.23.0")
js_dir="$CARGO_TARGET_DIR/js-tools"
# wit-bindgen 0.46 and wasm-tools 1.239 are the versions the SDK's wit-bindgen is built on.
c_tools=("wit-bindgen-cli@0.46.0 --no-default-features --features c"
    "wasm-tools@1.239.0 --no-default-features --features component,validate,print")
c_dir="$CARGO_TARGET_DIR/c-tools"
python_tools=(componentize-py==0.25.0 "botocore>=1.34" "pyjwt[crypto]>=2.8" "prometheus-client>=0.20"
    "openapi-spec-validator>=0.7,<0.10" "selenium>=4.20,<5" "moto[server]>=5.0,<6")

say() { printf '%s\n' "$*"; }
fail() {
    printf 'test.sh: %s\n' "$*" >&2
    exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }
can_apt() { is_root && command -v apt-get >/dev/null; }

# --- What is missing (nothing here installs anything) ----------------------------------------

channel="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
[ -n "$channel" ] || fail "rust-toolchain.toml names no channel"
command -v rustup >/dev/null ||
    fail "rustup is missing: install Rust with rustup (https://rustup.rs), then run ./test.sh again"
need_rust=""
# RUSTUP_AUTO_INSTALL=0: asking must not install the toolchain behind our back.
if ! RUSTUP_AUTO_INSTALL=0 rustup target list --installed --toolchain "$channel" 2>/dev/null |
    grep -qx wasm32-wasip2; then
    need_rust="Rust $channel with the wasm32-wasip2 target (rustup toolchain install)"
fi

need_redis=""
if ! command -v redis-server >/dev/null; then
    can_apt || fail "redis-server is missing (the shared-state tests start their own on free ports).
Install it, then run ./test.sh again:
    Debian/Ubuntu: sudo apt-get install redis-server
    Fedora:        sudo dnf install redis
    macOS:         brew install redis"
    need_redis="redis-server (apt-get)"
fi

need_nginx=""
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    can_apt || fail "nginx is missing (the request-hardening tests start their own on free ports).
Install it, then run ./test.sh again:
    Debian/Ubuntu: sudo apt-get install nginx
    Fedora:        sudo dnf install nginx
    macOS:         brew install nginx"
    need_nginx="nginx (apt-get)"
fi

need_chromium=""
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    can_apt || fail "chromium and chromedriver are missing (the developer portal's test drives a headless browser).
Install them, then run ./test.sh again:
    Debian:        sudo apt-get install chromium chromium-driver
    Ubuntu:        sudo snap install chromium (it brings chromedriver)
    Fedora:        sudo dnf install chromium chromedriver"
    need_chromium="chromium and chromium-driver (apt-get)"
fi

need_python_os=""
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    can_apt || fail "Python 3 with its venv module is missing; install it (Debian/Ubuntu: sudo apt-get
install python3 python3-venv), then run ./test.sh again"
    need_python_os="python3 and python3-venv (apt-get)"
fi

need_node_os=""
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    can_apt || fail "Node.js with npm is missing (componentize-js builds the JavaScript example); install
it (Debian/Ubuntu: sudo apt-get install nodejs npm), then run ./test.sh again"
    need_node_os="nodejs and npm (apt-get)"
fi
need_js=""
if [ "$(cat "$js_dir/wicket-tools.txt" 2>/dev/null)" != "${js_tools[*]}" ] ||
    [ ! -x "$js_dir/node_modules/.bin/componentize-js" ]; then
    need_js="JavaScript tools into $js_dir: ${js_tools[*]}"
fi

need_c_os=""
if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null ||
    [ ! -f /usr/include/wasm32-wasi/stdlib.h ] ||
    [ ! -f "$(clang --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null)" ]; then
    can_apt || fail "clang with wasm-ld, wasi-libc and the wasm32 compiler-rt builtins are missing (the C
example plugin and scaffold build with them). Install them, then run ./test.sh again:
    Debian/Ubuntu: sudo apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
    need_c_os="clang, lld, wasi-libc and libclang-rt-dev-wasm32 (apt-get)"
fi
need_c=""
if [ "$(cat "$c_dir/wicket-tools.txt" 2>/dev/null)" != "${c_tools[*]}" ] ||
    [ ! -x "$c_dir/bin/wit-bindgen" ] || [ ! -x "$c_dir/bin/wasm-tools" ]; then
    need_c="wit-bindgen-cli and wasm-tools into $c_dir (cargo install, once: ~6 minutes)"
fi

# The venv is current when it runs and was made for exactly this list of tools.
wanted="${python_tools[*]}"
need_venv=""
if ! { [ -x "$venv/bin/python3" ] && "$venv/bin/python3" -c '' 2>/dev/null &&
    [ "$(cat "$venv/wicket-tools.txt" 2>/dev/null)" = "$wanted" ]; }; then
    need_venv="Python tools into $venv: ${python_tools[*]}"
fi

# --- The first line says what will be installed ----------------------------------------------

plan=()
for item in "$need_rust" "$need_redis" "$need_nginx" "$need_chromium" "$need_python_os" "$need_venv" "$need_node_os" "$need_js" "$need_c_os" "$need_c"; do
    [ -n "$item" ] && plan+=("$item")
done
if [ "${#plan[@]}" -eq 0 ]; then
    say "test.sh: nothing to install (Rust $channel + wasm32-wasip2, redis-server, nginx, chromium, the Python tools in $venv, the JavaScript tools in $js_dir, and clang with wasi-libc and the C tools in $c_dir are there); running the tests"
else
    summary="$(printf '%s; ' "${plan[@]}")"
    say "test.sh: will install ${summary%; }; then run the tests"
fi

locked() {
    if [ -n "${WICKET_BUILD_LOCK:-}" ]; then
        flock "$WICKET_BUILD_LOCK" "$@"
    else
        "$@"
    fi
}

# --- Install --------------------------------------------------------------------------------

if [ -n "$need_rust" ]; then
    say "== installing Rust $channel with wasm32-wasip2"
    # With no arguments, in the repository, rustup installs the toolchain file's toolchain with
    # its targets and components (rustup >= 1.28); older rustup needs them spelled out.
    rustup toolchain install ||
        rustup toolchain install "$channel" --target wasm32-wasip2 --component rustfmt,clippy
fi

if [ -n "$need_redis" ] || [ -n "$need_nginx" ] || [ -n "$need_chromium" ] || [ -n "$need_python_os" ] || [ -n "$need_node_os" ] || [ -n "$need_c_os" ]; then
    packages=()
    [ -n "$need_c_os" ] && packages+=(clang lld wasi-libc libclang-rt-dev-wasm32)
    [ -n "$need_node_os" ] && packages+=(nodejs npm)
    [ -n "$need_redis" ] && packages+=(redis-server)
    [ -n "$need_nginx" ] && packages+=(nginx)
    [ -n "$need_chromium" ] && packages+=(chromium chromium-driver)
    [ -n "$need_python_os" ] && packages+=(python3 python3-venv)
    say "== installing ${packages[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    # Debian's packages may start services on their default ports; the tests start their own
    # on free ports, so stop the ones this install just started, by the service manager's means.
    for service in ${need_redis:+redis-server} ${need_nginx:+nginx}; do
        if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
            systemctl stop "$service" >/dev/null 2>&1 || true
        elif command -v service >/dev/null; then
            service "$service" stop >/dev/null 2>&1 || true
        fi
    done
fi

if [ -n "$need_venv" ]; then
    say "== installing the Python tools into $venv"
    rm -rf "$venv"
    mkdir -p "$CARGO_TARGET_DIR"
    python3 -m venv "$venv"
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "${python_tools[@]}"
    printf '%s' "$wanted" >"$venv/wicket-tools.txt"
fi

if [ -n "$need_js" ]; then
    say "== installing the JavaScript tools into $js_dir"
    rm -rf "$js_dir"
    mkdir -p "$js_dir"
    # In the directory, not with --prefix: that would also move npm's global config (its CA file).
    (cd "$js_dir" && npm install --loglevel=error --no-audit --no-fund "${js_tools[@]}" >/dev/null)
    printf '%s' "${js_tools[*]}" >"$js_dir/wicket-tools.txt"
fi

if [ -n "$need_c" ]; then
    say "== installing wit-bindgen-cli and wasm-tools into $c_dir (cargo install; once, ~6 minutes)"
    rm -rf "$c_dir"
    for tool in "${c_tools[@]}"; do
        # shellcheck disable=SC2086 # each entry is a crate with its feature flags
        locked env CARGO_TARGET_DIR="$CARGO_TARGET_DIR/c-tools-build" \
            cargo install --quiet --locked --root "$c_dir" $tool
    done
    rm -rf "$CARGO_TARGET_DIR/c-tools-build"
    printf '%s' "${c_tools[*]}" >"$c_dir/wicket-tools.txt"
fi

# The tests run `python3`, `componentize-py`, `componentize-js`, `wit-bindgen` and
# `wasm-tools`: the ones installed here.
export PATH="$venv/bin:$js_dir/node_modules/.bin:$c_dir/bin:$PATH"

# --- Test -----------------------------------------------------------------------------------

failed=()
step() {
    local name="$1"
    shift
    say "== $name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

workspace_tests() {
    locked cargo test --workspace --no-fail-fast --no-run &&
        cargo test --workspace --no-fail-fast
}
# The plugins and the SDK are workspaces of their own; their unit tests run natively.
native=(env CARGO_TARGET_DIR="$CARGO_TARGET_DIR/plugins-native")
plugin_tests() (
    cd plugins &&
        locked "${native[@]}" cargo test --workspace --no-run &&
        "${native[@]}" cargo test --workspace
)
sdk_tests() (
    cd plugin-sdk &&
        locked "${native[@]}" cargo test --all-features --no-run &&
        "${native[@]}" cargo test --all-features &&
        # The SigV4 crate the SDK and the gateway share: the signer against the AWS suite.
        locked "${native[@]}" cargo test --manifest-path sigv4/Cargo.toml --all-features --no-run &&
        "${native[@]}" cargo test --manifest-path sigv4/Cargo.toml --all-features
)

step "cargo test --workspace --no-fail-fast" workspace_tests
step "plugin unit tests (plugins/, native)" plugin_tests
step "SDK unit tests (plugin-sdk/, native)" sdk_tests

if [ "${#failed[@]}" -ne 0 ]; then
    say "test.sh: FAILED: $(printf '%s; ' "${failed[@]}")"
    exit 1
fi
say "test.sh: all tests passed"
