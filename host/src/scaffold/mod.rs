//! `wicket plugin new`: a plugin project an author can build at once, in Rust, Python,
//! JavaScript or C, as a filter or an integration. Each project has the plugin's source, a
//! `build.sh` that makes `NAME.wasm` with the language's toolchain, the WIT contract it builds
//! against (`wit/`, from this binary), a config snippet (`wicket.toml`) and a README saying
//! how to try it (`wicket plugin test`). What a project needs from Wicket comes from the
//! binary that wrote it, so it builds outside this repository: the Rust SDK's sources (unless
//! `--sdk` names a checkout's `plugin-sdk`) and, for C, the WASI preview1 adapter matching the
//! host's wasmtime.

mod embedded;

use std::path::{Path, PathBuf};

/// The languages a project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

/// What the plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Filter,
    Integration,
}

/// What to write, and where.
pub struct Options {
    pub name: String,
    pub lang: Lang,
    pub kind: Kind,
    /// The project folder; must not exist, or be empty.
    pub dir: PathBuf,
    /// Rust only: depend on the SDK at this path instead of a copy written into the project.
    pub sdk: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "plugin name {0:?}: use 1 to 64 lowercase letters, digits and '-', starting with a letter"
    )]
    Name(String),
    #[error("{0}: exists and is not empty; choose another folder (--dir) or name")]
    NotEmpty(PathBuf),
    #[error("--sdk {0}: not the SDK's folder (no Cargo.toml naming wicket-plugin-sdk there)")]
    Sdk(PathBuf),
    #[error("--sdk is for Rust projects")]
    SdkNotRust,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Write the project; returns the files written (relative to `dir`).
pub fn create(opts: &Options) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(&opts.name)?;
    if opts.sdk.is_some() && opts.lang != Lang::Rust {
        return Err(ScaffoldError::SdkNotRust);
    }
    if let Some(sdk) = &opts.sdk {
        let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap_or_default();
        if !manifest.contains("name = \"wicket-plugin-sdk\"") {
            return Err(ScaffoldError::Sdk(sdk.clone()));
        }
    }
    let non_empty = std::fs::read_dir(&opts.dir).is_ok_and(|mut d| d.next().is_some());
    if non_empty || opts.dir.is_file() {
        return Err(ScaffoldError::NotEmpty(opts.dir.clone()));
    }
    let vars = Vars::new(opts);
    let mut files: Vec<(PathBuf, Vec<u8>, bool)> = Vec::new();
    for (path, text) in templates(opts.lang, opts.kind) {
        let executable = path.ends_with(".sh");
        files.push((
            PathBuf::from(path),
            vars.render(text).into_bytes(),
            executable,
        ));
    }
    files.push((
        "wicket.toml".into(),
        vars.render(include_str!("templates/wicket.toml"))
            .into_bytes(),
        false,
    ));
    files.push((
        "README.md".into(),
        vars.render(readme(opts.lang)).into_bytes(),
        false,
    ));
    match (opts.lang, &opts.sdk) {
        (Lang::Rust, None) => {
            // The SDK reads the contract at `../wit` from its own folder.
            for (path, bytes) in embedded::SDK.iter().chain(embedded::WIT) {
                files.push((Path::new("wicket-sdk").join(path), bytes.to_vec(), false));
            }
            // Its lock file pins what the SDK was tested with; cargo adds the project.
            let lock = embedded::SDK
                .iter()
                .find(|(p, _)| *p == "plugin-sdk/Cargo.lock");
            if let Some((_, bytes)) = lock {
                files.push(("Cargo.lock".into(), bytes.to_vec(), false));
            }
        }
        (Lang::Rust, Some(_)) => {}
        _ => {
            for (path, bytes) in embedded::WIT {
                files.push((PathBuf::from(path), bytes.to_vec(), false));
            }
        }
    }
    if opts.lang == Lang::Rust {
        files.push((
            "rust-toolchain.toml".into(),
            embedded::RUST_TOOLCHAIN.as_bytes().to_vec(),
            false,
        ));
    }
    if opts.lang == Lang::C {
        files.push((
            "wasi_snapshot_preview1.reactor.wasm".into(),
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
                .to_vec(),
            false,
        ));
    }
    let mut written = Vec::new();
    for (rel, bytes, executable) in files {
        let path = opts.dir.join(&rel);
        write(&path, &bytes, executable)?;
        written.push(rel);
    }
    Ok(written)
}

fn write(path: &Path, bytes: &[u8], executable: bool) -> Result<(), ScaffoldError> {
    let io = |source| ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, bytes).map_err(io)?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    Ok(())
}

/// A name that is a valid config table key, crate name (after `-` -> `_`), C identifier
/// prefix and file name, with nothing to escape anywhere it is written.
fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::Name(name.to_string()))
    }
}

/// The source files of a language and kind, as (path, template).
fn templates(lang: Lang, kind: Kind) -> Vec<(&'static str, &'static str)> {
    use Kind::{Filter, Integration};
    match (lang, kind) {
        (Lang::Rust, _) => vec![
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("build.sh", include_str!("templates/rust/build.sh")),
            (
                "src/lib.rs",
                match kind {
                    Filter => include_str!("templates/rust/filter.rs"),
                    Integration => include_str!("templates/rust/integration.rs"),
                },
            ),
        ],
        (Lang::Python, _) => vec![
            ("build.sh", include_str!("templates/python/build.sh")),
            (
                "app.py",
                match kind {
                    Filter => include_str!("templates/python/filter.py"),
                    Integration => include_str!("templates/python/integration.py"),
                },
            ),
        ],
        (Lang::Js, _) => vec![
            ("build.sh", include_str!("templates/js/build.sh")),
            ("package.json", include_str!("templates/js/package.json")),
            (
                "plugin.js",
                match kind {
                    Filter => include_str!("templates/js/filter.js"),
                    Integration => include_str!("templates/js/integration.js"),
                },
            ),
        ],
        (Lang::C, _) => vec![
            ("build.sh", include_str!("templates/c/build.sh")),
            // Shared with the C example, which the tests build too.
            (
                "wicket_config.h",
                include_str!("../../../plugins/examples/c-filter/wicket_config.h"),
            ),
            (
                "wicket_config.c",
                include_str!("../../../plugins/examples/c-filter/wicket_config.c"),
            ),
            (
                "plugin.c",
                match kind {
                    Filter => include_str!("templates/c/filter.c"),
                    Integration => include_str!("templates/c/integration.c"),
                },
            ),
        ],
    }
}

fn readme(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => include_str!("templates/rust/README.md"),
        Lang::Python => include_str!("templates/python/README.md"),
        Lang::Js => include_str!("templates/js/README.md"),
        Lang::C => include_str!("templates/c/README.md"),
    }
}

/// The placeholders of the templates: `{{name}}` (as given), `{{ident}}` (`-` -> `_`),
/// `{{world}}` (the WIT world the project targets), `{{kind}}`, `{{sdk}}` (Rust: the SDK's
/// path), `{{limits}}`, `{{route_plugins}}` and `{{mock}}` (the config snippet's plugin
/// settings and route).
struct Vars {
    pairs: Vec<(&'static str, String)>,
}

impl Vars {
    fn new(opts: &Options) -> Vars {
        let world = match (opts.lang, opts.kind) {
            // Interpreted languages keep every import of their world: the filter of only
            // `log` and `config` keeps `wicket check` quiet about ungranted capabilities.
            (Lang::Python | Lang::Js, Kind::Filter) => "minimal-filter",
            (_, Kind::Filter) => "filter",
            (_, Kind::Integration) => "integration",
        };
        let sdk = match &opts.sdk {
            Some(p) => std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            None => "wicket-sdk/plugin-sdk".to_string(),
        };
        let kind = match opts.kind {
            Kind::Filter => "filter",
            Kind::Integration => "integration",
        };
        Vars {
            pairs: vec![
                ("{{name}}", opts.name.clone()),
                ("{{ident}}", opts.name.replace('-', "_")),
                ("{{world}}", world.to_string()),
                ("{{kind}}", kind.to_string()),
                ("{{sdk}}", sdk),
                (
                    "{{route_plugins}}",
                    match opts.kind {
                        Kind::Filter => format!(
                            "plugins = [\"{}\"]\nintegration = \"hello\"",
                            opts.name
                        ),
                        Kind::Integration => format!("integration = \"{}\"", opts.name),
                    },
                ),
                (
                    "{{limits}}",
                    match opts.lang {
                        // An interpreter in the component: tens of MB per instance, and its
                        // first call initializes modules.
                        Lang::Python | Lang::Js => "isolation = \"pooled\"   # reuse warm instances (module globals persist)\nmemory_mb = 256\ncpu_ms = 1000\n",
                        Lang::Rust | Lang::C => "# isolation = \"pooled\"   # reuse warm instances (default for wasm: a fresh instance per request)\n",
                    }
                    .to_string(),
                ),
                (
                    "{{mock}}",
                    match opts.kind {
                        Kind::Filter => "\n# What the filter sets in the context shows in the answer.\n[plugins.hello]\nbuiltin = \"mock\"\nconfig = { status = 200, body = { seen = \"{NAME.seen}\" } }\n".replace("NAME", &opts.name),
                        Kind::Integration => String::new(),
                    },
                ),
            ],
        }
    }

    fn render(&self, template: &str) -> String {
        let mut out = template.to_string();
        for (key, value) in &self.pairs {
            out = out.replace(key, value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path, lang: Lang, kind: Kind) -> Options {
        Options {
            name: "my-plugin".into(),
            lang,
            kind,
            dir: dir.to_path_buf(),
            sdk: None,
        }
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            "",
            "My",
            "1a",
            "a b",
            "a/../b",
            "a-",
            "a--b",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "rate-limit2", "x-y-z"] {
            assert!(check_name(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn every_project_is_rendered_whole() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            for kind in [Kind::Filter, Kind::Integration] {
                let dir = std::env::temp_dir().join(format!(
                    "wicket-scaffold-{}-{lang:?}-{kind:?}",
                    std::process::id()
                ));
                let _ = std::fs::remove_dir_all(&dir);
                let files = create(&options(&dir, lang, kind)).unwrap();
                for rel in files
                    .iter()
                    .filter(|f| !f.starts_with("wicket-sdk") && !f.starts_with("wit"))
                {
                    let bytes = std::fs::read(dir.join(rel)).unwrap();
                    if let Ok(text) = std::str::from_utf8(&bytes) {
                        assert!(
                            !text.contains("{{"),
                            "{lang:?} {kind:?} {}: {{{{",
                            rel.display()
                        );
                    }
                }
                assert!(files.iter().any(|f| f == Path::new("wicket.toml")));
                assert!(files.iter().any(|f| f == Path::new("build.sh")));
                // A second run does not overwrite the author's work.
                assert!(matches!(
                    create(&options(&dir, lang, kind)),
                    Err(ScaffoldError::NotEmpty(_))
                ));
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
}
