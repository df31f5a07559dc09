//! Builds the built-in plugins (`plugins/`, a workspace of its own for wasm32-wasip2), then
//! compiles each component to machine code for this host with the runtime's own engine
//! settings (`src/runtime/engine_settings.rs`), and puts both in OUT_DIR, where
//! `runtime/builtins.rs` embeds them: a gateway then starts without compiling a built-in.
//! The plugin workspace has its own target directory next to ours, so this nested cargo never
//! waits on our lock.

#[path = "src/runtime/engine_settings.rs"]
mod engine_settings;
#[path = "src/parallel.rs"]
mod parallel;

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // Watch every built-in plugin crate (not the plugins' own target directory, which changes on
    // every build), the SDK with its derive and template crates, and the contract.
    let mut watched = vec![
        root.join("plugin-sdk/Cargo.toml"),
        root.join("plugin-sdk/Cargo.lock"),
        root.join("plugin-sdk/README.md"),
        root.join("plugin-sdk/src"),
        root.join("plugin-sdk/derive"),
        root.join("plugin-sdk/template"),
        root.join("plugin-sdk/sigv4"),
        root.join("wit"),
    ];
    for entry in std::fs::read_dir(root.join("plugins")).unwrap().flatten() {
        if entry.file_name() != "target" && entry.file_name() != "examples" {
            watched.push(entry.path());
        }
    }
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    embed_author_sources(&root, &out_dir);

    println!("cargo:rerun-if-env-changed=WICKET_PREBUILT_PLUGINS");
    if let Some(dir) = std::env::var_os("WICKET_PREBUILT_PLUGINS") {
        // Packagers (and offline builds) can hand us components built elsewhere.
        copy_components(Path::new(&dir), &out_dir);
        precompile(&out_dir);
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
    let status = cmd
        .status()
        .expect("running cargo for the built-in plugins");
    if !status.success() {
        panic!(
            "building the built-in plugins failed; is the wasm32-wasip2 target installed? \
             (`rustup toolchain install` in the repository installs the toolchain of \
             rust-toolchain.toml with its target)"
        );
    }
    copy_components(
        &plugin_target.join("wasm32-wasip2").join("release"),
        &out_dir,
    );
    precompile(&out_dir);
}

/// `NAME.wasm` -> `NAME.cwasm` for every component in `dir`, several at a time. The runtime
/// checks at load that the artifact fits its engine (wasmtime version, settings, CPU
/// features) and compiles the component itself when not, so a binary built here and run on
/// an older CPU still works, only slower to start.
fn precompile(dir: &Path) {
    let engine = wasmtime::Engine::new(&engine_settings::config()).expect("a wasmtime engine");
    let components: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    parallel::map(&components, |path| {
        let wasm = std::fs::read(path).unwrap();
        let compiled = engine
            .precompile_component(&wasm)
            .unwrap_or_else(|e| panic!("precompiling {}: {e:#}", path.display()));
        std::fs::write(path.with_extension("cwasm"), compiled).unwrap();
    });
}

/// The files `wicket plugin new` writes into a new project besides its templates: the WIT
/// contract, and for Rust the SDK's sources with its lock file, so that a project made outside
/// this repository builds against the SDK of the binary that made it. Written as a table of
/// `include_bytes!` into OUT_DIR (`scaffold/embedded.rs` includes it).
fn embed_author_sources(root: &Path, out_dir: &Path) {
    let mut wit = Vec::new();
    collect(&root.join("wit"), &mut wit);
    let mut sdk = Vec::new();
    for part in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "src",
        "derive",
        "template",
        "sigv4",
    ] {
        collect(&root.join("plugin-sdk").join(part), &mut sdk);
    }
    let table = |files: &[PathBuf]| {
        let rows: Vec<String> = files
            .iter()
            .map(|f| {
                let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                format!(
                    "    ({rel:?}, include_bytes!({:?})),\n",
                    f.display().to_string()
                )
            })
            .collect();
        rows.concat()
    };
    let code = format!(
        "/// `wit/` of the repository, as (path, bytes).\npub static WIT: &[(&str, &[u8])] = &[\n{}];\n\
         /// The Rust SDK's sources (`plugin-sdk/`), as (path, bytes).\npub static SDK: &[(&str, &[u8])] = &[\n{}];\n",
        table(&wit),
        table(&sdk)
    );
    std::fs::write(out_dir.join("author_sources.rs"), code).unwrap();
}

/// Every file under `path` (or `path` itself), in a stable order, leaving out build output.
fn collect(path: &Path, into: &mut Vec<PathBuf>) {
    if path.is_file() {
        into.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for entry in entries {
        if entry.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        collect(&entry, into);
    }
}

/// Copy every `wicket_plugin_*.wasm`; `runtime/builtins.rs` names the ones it embeds.
fn copy_components(from: &Path, to: &Path) {
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("wicket_plugin_") && name.ends_with(".wasm") {
            std::fs::copy(entry.path(), to.join(&name))
                .unwrap_or_else(|e| panic!("copying {name} to {}: {e}", to.display()));
        }
    }
}
