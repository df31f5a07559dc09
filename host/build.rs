//! Builds the built-in plugins (`plugins/`, a workspace of its own for wasm32-wasip2) and puts
//! the components in OUT_DIR, where `runtime/builtins.rs` embeds them. The plugin workspace
//! has its own target directory next to ours, so this nested cargo never waits on our lock.

use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGINS: &[&str] = &["wicket_plugin_http", "wicket_plugin_mock", "wicket_plugin_headers"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    for watched in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "plugins/http",
        "plugins/mock",
        "plugins/headers",
        "plugin-sdk/Cargo.toml",
        "plugin-sdk/src",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    println!("cargo:rerun-if-env-changed=WICKET_PREBUILT_PLUGINS");
    if let Some(dir) = std::env::var_os("WICKET_PREBUILT_PLUGINS") {
        // Packagers (and offline builds) can hand us components built elsewhere.
        for name in PLUGINS {
            let file = format!("{name}.wasm");
            copy(&Path::new(&dir).join(&file), &out_dir.join(&file));
        }
        return;
    }

    // OUT_DIR is <target>/<profile>/build/wicket-<hash>/out.
    let target_root = out_dir.ancestors().nth(4).unwrap().to_path_buf();
    let plugin_target = target_root.join("wasm-plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root.join("plugins"))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &plugin_target);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the built-in plugins");
    if !status.success() {
        panic!(
            "building the built-in plugins failed; is the wasm32-wasip2 target installed? \
             (rustup target add wasm32-wasip2)"
        );
    }
    let built = plugin_target.join("wasm32-wasip2").join("release");
    for name in PLUGINS {
        copy(&built.join(format!("{name}.wasm")), &out_dir.join(format!("{name}.wasm")));
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
