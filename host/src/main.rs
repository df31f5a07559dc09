//! The `wicket` command: run the gateway, check a config, list the built-in plugins.

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use wicket::capabilities::{http, Services};
use wicket::config::GatewayConfig;
use wicket::gateway::Gateway;
use wicket::runtime::{builtins, PluginKind, Runtime};
use wicket::state::State;

#[derive(Parser)]
#[command(
    name = "wicket",
    version,
    about = "A programmable API gateway whose request steps are WebAssembly components"
)]
struct Cli {
    /// Log line format (the level comes from RUST_LOG, default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve traffic with the given config.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config and load its plugins without serving; exit 1 on any problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// List plugins and their config keys: the built-ins, or the component files given.
    Plugins {
        /// Plugin components (`.wasm`) to describe instead of the built-ins.
        files: Vec<PathBuf>,
        /// One JSON document instead of text, for tools.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Run { config } => run(config),
        Command::Check { config } => check(config),
        Command::Plugins { files, json } => print_plugins(&files, json),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Load and validate, printing every problem with its file, line and key.
async fn load(path: &Path) -> Option<(GatewayConfig, Arc<Services>, Gateway)> {
    let (config, issues) = match GatewayConfig::load_lenient(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
    let state = match State::new(&config.state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: state: {e}", path.display());
            return None;
        }
    };
    let services = Arc::new(Services {
        state,
        http: http::Client::new(config.server.max_body_bytes),
    });
    if !issues.is_empty() {
        for issue in &issues {
            eprintln!("{issue}");
        }
        for e in wicket::gateway::check_plugins(&config, services).await {
            eprintln!("{e}");
        }
        return None;
    }
    match Gateway::build(config.clone(), services.clone()).await {
        Ok(gw) => Some((config, services, gw)),
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            None
        }
    }
}

fn check(path: PathBuf) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        eprintln!("cannot start the async runtime");
        return ExitCode::FAILURE;
    };
    match runtime.block_on(load(&path)) {
        Some((config, _, _)) => {
            println!(
                "{}: ok ({} routes, {} plugins)",
                path.display(),
                config.routes.len(),
                config.plugins.len()
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn run(path: PathBuf) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(path)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let metrics = wicket::admin::install_recorder()?;
    let Some((config, _services, gateway)) = load(&path).await else {
        return Ok(false);
    };
    let tls = match &config.server.tls {
        Some(t) => Some(wicket::server::tls::acceptor(t)?),
        None => None,
    };
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    if let Some(admin) = config.server.admin {
        let admin_listener = TcpListener::bind(admin)
            .await
            .with_context(|| format!("binding the admin listener {admin}"))?;
        let admin_addr = admin_listener.local_addr()?;
        tracing::info!(listener = "admin", addr = %admin_addr, "listening");
        tokio::spawn(wicket::admin::serve(admin_listener, metrics));
    }
    tracing::info!(
        listener = "proxy",
        addr = %addr,
        tls = tls.is_some(),
        routes = config.routes.len(),
        plugins = config.plugins.len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    let shared = Arc::new(ArcSwap::from_pointee(gateway));
    wicket::server::serve(listener, shared, tls, shutdown_signal()).await;
    Ok(true)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Describe the built-ins (no files given) or each file, as the plugins describe themselves.
fn print_plugins(files: &[PathBuf], json: bool) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let state = match State::new(&wicket::config::StateConfig::Memory { kv_bytes: 1 << 20 }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("state: {e}");
                return ExitCode::FAILURE;
            }
        };
        let services = Arc::new(Services {
            state,
            http: http::Client::new(1 << 20),
        });
        let settings = wicket::config::RuntimeConfig::default();
        let plugins = match Runtime::with_settings(&settings, 64 << 20, services) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cannot start the Wasm runtime: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let mut items: Vec<(String, std::borrow::Cow<'static, [u8]>)> = Vec::new();
        if files.is_empty() {
            for (name, wasm) in builtins::ALL {
                items.push((name.to_string(), (*wasm).into()));
            }
        } else {
            for file in files {
                match std::fs::read(file) {
                    Ok(bytes) => items.push((file.display().to_string(), bytes.into())),
                    Err(e) => {
                        eprintln!("{}: {e}", file.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        let mut ok = true;
        let mut documents = Vec::new();
        for (name, bytes) in items {
            match plugins.describe_component(&bytes).await {
                Ok((kinds, description)) => {
                    let kinds: Vec<&str> = kinds.iter().map(|k| PluginKind::name(*k)).collect();
                    if json {
                        documents.push(description.to_json(&name, &kinds));
                    } else {
                        print!("{}", description.render(&name, &kinds));
                    }
                }
                Err(e) => {
                    eprintln!("{name}: {e}");
                    ok = false;
                }
            }
        }
        if json {
            println!("{:#}", serde_json::Value::Array(documents));
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
