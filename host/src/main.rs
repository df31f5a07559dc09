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
use wicket::runtime::builtins;
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
    /// List the built-in plugins and their config keys.
    Plugins,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Run { config } => run(config),
        Command::Check { config } => check(config),
        Command::Plugins => {
            print_plugins();
            ExitCode::SUCCESS
        }
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
    let config = match GatewayConfig::load(path) {
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

fn print_plugins() {
    for b in builtins::ALL {
        println!("{} ({}): {}", b.name, b.kind.name(), b.summary);
        if !b.grants.is_empty() {
            let grants: Vec<&str> = b.grants.iter().map(|c| c.name()).collect();
            println!("  grants: {}", grants.join(", "));
        }
        for k in b.keys {
            let req = if k.required { " (required)" } else { "" };
            println!("  {}{req}: {}", k.name, k.doc);
        }
    }
}
