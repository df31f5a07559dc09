//! The `wicket` command: run the gateway, check a config, list the built-in plugins.

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use wicket::capabilities::{http, Services};
use wicket::config::{ConfigError, ConfigIssue, GatewayConfig, RuntimeShape};
use wicket::deploy::{self, Deployer};
use wicket::gateway::Gateway;
use wicket::runtime::{builtins, PluginKind, Runtime, Source};
use wicket::state::State;

/// mimalloc instead of glibc's malloc: a proxied request makes about a hundred small
/// allocations (hyper, headers, futures), and glibc's malloc and free were 17% of the
/// instructions of a request (callgrind, `bench/profile.py wicket-0`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Serve traffic with the given config. `SIGHUP` or `POST /admin/reload` reloads it,
    /// `SIGTERM` drains and exits.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Reload when the config file or any file it reads changes.
        #[arg(long)]
        watch: bool,
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
    /// Write the config's API as an OpenAPI 3.1 document, or (`import`) a config from one.
    Openapi(OpenapiArgs),
    /// Compile plugin components into the compile cache ahead of deploy ($WICKET_CACHE_DIR,
    /// else ~/.cache/wicket; a config's `[runtime] cache_dir` must name the same folder), so a
    /// gateway's first start loads them in milliseconds instead of compiling (a JavaScript or
    /// Python component takes seconds).
    Compile {
        /// Plugin components (`.wasm`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// For plugin authors: start a plugin project, or run one request through a plugin.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a plugin project that builds at once: source, build.sh, the WIT contract, a
    /// config snippet (wicket.toml) and a README.
    New {
        /// The plugin's name: lowercase letters, digits and '-'.
        name: String,
        #[arg(long, value_enum)]
        lang: wicket::scaffold::Lang,
        #[arg(long, value_enum, default_value = "filter")]
        kind: wicket::scaffold::Kind,
        /// The project folder (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rust: depend on the SDK at this path (a checkout's plugin-sdk) instead of the copy
        /// written into the project from this binary.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run one request through one plugin and show the verdict, the request as the next step
    /// sees it, the response, the context writes and the plugin's log lines. Exit 1 when the
    /// plugin does not load or fails (trap, CPU time, memory).
    Test(Box<PluginTestArgs>),
}

#[derive(clap::Args)]
struct PluginTestArgs {
    /// The plugin component (`.wasm`).
    wasm: PathBuf,
    /// A key of the plugin's `config` table, KEY=VALUE (the value as TOML when it parses,
    /// else text; `a.b=1` for nested tables). Repeat for more keys.
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Capabilities granted besides log and config (kv, counters, http, metrics).
    #[arg(long = "grant", value_name = "CAPABILITY")]
    grants: Vec<String>,
    /// `request` (a fresh instance, the default for a component file) or `pooled`.
    #[arg(long)]
    isolation: Option<String>,
    #[arg(long)]
    cpu_ms: Option<i64>,
    #[arg(long)]
    memory_mb: Option<i64>,
    /// Origins the plugin may call with wasi:http (`allowed_hosts`).
    #[arg(long = "allow-host", value_name = "ORIGIN")]
    allowed_hosts: Vec<String>,
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// The request path, with an optional ?query.
    #[arg(long, default_value = "/")]
    path: String,
    /// A request header, 'NAME: VALUE'. Repeat for more.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// The request body, read from a file.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// The status a filter's request is answered with by the stand-in integration.
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// One JSON document instead of text, for tools.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct OpenapiArgs {
    #[command(subcommand)]
    import: Option<OpenapiImport>,
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DocFormat::Json)]
    format: DocFormat,
    /// Document the routes one stage serves (`[stages.NAME]`); required when the config
    /// has stages, since each stage serves its own copy of the routes.
    #[arg(long)]
    stage: Option<String>,
}

#[derive(Subcommand)]
enum OpenapiImport {
    /// Write a config (TOML, to stdout) serving an OpenAPI 3.0/3.1 document's operations.
    Import {
        /// The document, YAML or JSON.
        spec: PathBuf,
        /// What answers each operation.
        #[arg(long, value_enum, default_value_t = wicket::openapi::import::Integration::Auto)]
        integration: wicket::openapi::import::Integration,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DocFormat {
    Json,
    Yaml,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `plugin test` sets up logging of its own, to report the plugin's lines.
    if !matches!(cli.command, Command::Plugin(PluginCommand::Test(_))) {
        init_logging(cli.log_format);
    }
    match cli.command {
        Command::Run { config, watch } => run(config, watch),
        Command::Check { config } => check(config),
        Command::Plugins { files, json } => print_plugins(&files, json),
        Command::Openapi(args) => openapi(args),
        Command::Compile { files } => compile_plugins(&files),
        Command::Plugin(PluginCommand::New {
            name,
            lang,
            kind,
            dir,
            sdk,
        }) => plugin_new(name, lang, kind, dir, sdk),
        Command::Plugin(PluginCommand::Test(args)) => plugin_test(*args, cli.log_format),
    }
}

fn plugin_new(
    name: String,
    lang: wicket::scaffold::Lang,
    kind: wicket::scaffold::Kind,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> ExitCode {
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    let options = wicket::scaffold::Options {
        name: name.clone(),
        lang,
        kind,
        dir: dir.clone(),
        sdk,
    };
    match wicket::scaffold::create(&options) {
        Ok(files) => {
            println!("wrote {} files into {}:", files.len(), dir.display());
            for f in files
                .iter()
                .filter(|f| !f.starts_with("wicket-sdk") && !f.starts_with("wit"))
            {
                println!("  {}", f.display());
            }
            println!(
                "next: cd {} && ./build.sh && wicket plugin test {name}.wasm --path /hello",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wicket plugin new: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `wicket plugin test`: logging goes to the report (every line the plugin causes) and, for
/// warnings and errors or what RUST_LOG asks, to stderr as usual.
fn plugin_test(args: PluginTestArgs, format: LogFormat) -> ExitCode {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let capture = wicket::plugin_test::LogCapture::default();
    let stderr_filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let stderr = match format {
        LogFormat::Text => stderr.with_filter(stderr_filter).boxed(),
        LogFormat::Json => stderr
            .json()
            .flatten_event(true)
            .with_filter(stderr_filter)
            .boxed(),
    };
    // The plugin's lines (and the host's about it) carry a `plugin` field or come from the
    // output target; the runtime's own start-up lines are not the author's business.
    let about_plugin = tracing_subscriber::filter::filter_fn(|meta| {
        meta.target() == "wicket::plugin_output"
            || meta.fields().field("plugin").is_some()
            || *meta.level() <= tracing::Level::WARN
    });
    tracing_subscriber::registry()
        .with(stderr)
        .with(capture.clone().with_filter(about_plugin))
        .init();

    let mut config = toml::Table::new();
    for assignment in &args.config {
        if let Err(e) = wicket::plugin_test::set_config(&mut config, assignment) {
            eprintln!("wicket plugin test: {e}");
            return ExitCode::FAILURE;
        }
    }
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone().into_bytes(),
        (None, Some(f)) => match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("wicket plugin test: {}: {e}", f.display());
                return ExitCode::FAILURE;
            }
        },
        (None, None) => Vec::new(),
    };
    let setup = wicket::plugin_test::Setup {
        wasm: args.wasm.clone(),
        config,
        grants: args.grants.clone(),
        isolation: args.isolation.clone(),
        cpu_ms: args.cpu_ms,
        memory_mb: args.memory_mb,
        allowed_hosts: args.allowed_hosts.clone(),
    };
    let request = wicket::plugin_test::TestRequest {
        method: args.method.clone(),
        path: args.path.clone(),
        headers: args.headers.clone(),
        body,
        status: args.status,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let (_runtime, plugin) = match wicket::plugin_test::load(&setup).await {
            Ok(p) => p,
            Err(errors) => {
                for e in errors {
                    eprintln!("{}: {e}", args.wasm.display());
                }
                return ExitCode::FAILURE;
            }
        };
        // Lines logged while loading (e.g. about ungranted imports) are not the request's.
        capture.lines.lock().unwrap().clear();
        let outcome = match wicket::plugin_test::run(&plugin, &request).await {
            Ok(o) => o,
            Err(e) => {
                eprintln!("wicket plugin test: {e}");
                return ExitCode::FAILURE;
            }
        };
        let logs = capture.lines.lock().unwrap().clone();
        if args.json {
            println!("{:#}", wicket::plugin_test::to_json(&outcome, &logs));
        } else {
            print!("{}", wicket::plugin_test::render(&outcome, &logs));
        }
        if outcome.verdict == "failed" {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// A Wasm runtime of default settings, for the commands that look at plugins outside a
/// gateway (`plugins`, `compile`).
fn standalone_runtime() -> Result<Runtime, String> {
    let state = State::new(&wicket::config::StateConfig::Memory { kv_bytes: 1 << 20 })
        .map_err(|e| format!("state: {e}"))?;
    let services = Arc::new(Services {
        state: Arc::new(state),
        http: http::Client::new(1 << 20),
        aws: Arc::new(wicket::aws::Keychain::from_process()),
    });
    let settings = wicket::config::RuntimeConfig::default();
    Runtime::with_settings(&settings, 64 << 20, services)
        .map_err(|e| format!("cannot start the Wasm runtime: {e:#}"))
}

fn compile_plugins(files: &[PathBuf]) -> ExitCode {
    let plugins = match standalone_runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(dir) = plugins.cache_dir() else {
        eprintln!(
            "wicket compile: no compile cache (WICKET_CACHE_DIR is empty); set it to a folder"
        );
        return ExitCode::FAILURE;
    };
    let mut ok = true;
    for file in files {
        let started = std::time::Instant::now();
        let compiled = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| plugins.precompile(&bytes));
        match compiled {
            Ok(()) => println!(
                "{}: compiled into {} ({} ms)",
                file.display(),
                dir.display(),
                started.elapsed().as_millis()
            ),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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

/// The config file as far as it validates (see `GatewayConfig::load_lenient`).
type Parsed = Result<(GatewayConfig, Vec<ConfigIssue>), ConfigError>;

/// Build the gateway from the parsed config, printing every problem with its file,
/// line and key.
async fn load(parsed: Parsed) -> Option<(GatewayConfig, Arc<Services>, Gateway)> {
    let (config, issues) = match parsed {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
    let services = match deploy::services(&config, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
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
    match runtime.block_on(load(GatewayConfig::load_lenient(&path))) {
        Some((config, _, gateway)) => {
            println!(
                "{}: ok ({} routes, {} plugins)",
                path.display(),
                config.routes.len(),
                config.plugins.len()
            );
            for plugin in &gateway.plugins {
                println!("  {}", plugin.capabilities_line());
            }
            print!("{}", stage_table(&config));
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn openapi(args: OpenapiArgs) -> ExitCode {
    if let Some(OpenapiImport::Import { spec, integration }) = args.import {
        return import_openapi(&spec, integration);
    }
    let Some(path) = args.config else {
        eprintln!("wicket openapi: give --config FILE (or `wicket openapi import SPEC`)");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let Some((config, _, gateway)) = runtime.block_on(load(GatewayConfig::load_lenient(&path)))
    else {
        return ExitCode::FAILURE;
    };
    let stages: Vec<&str> = config.stages.iter().map(|s| s.name.as_str()).collect();
    match (&args.stage, stages.is_empty()) {
        (Some(s), _) if !stages.contains(&s.as_str()) => {
            eprintln!(
                "wicket openapi: no stage {s:?} in {}; stages: {}",
                path.display(),
                if stages.is_empty() {
                    "none".to_string()
                } else {
                    stages.join(", ")
                }
            );
            return ExitCode::FAILURE;
        }
        (None, false) => {
            eprintln!(
                "wicket openapi: {} has stages ({}); choose one with --stage",
                path.display(),
                stages.join(", ")
            );
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    let stage = args.stage.as_deref();
    let select = |r: &wicket::config::RouteSpec| r.stage.as_deref() == stage;
    let options = wicket::openapi::ExportOptions {
        select: &select,
        servers: None,
    };
    let (doc, warnings) = wicket::openapi::document(&config, &gateway.plugins, &options);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    match args.format {
        DocFormat::Json => println!("{}", doc.to_json()),
        DocFormat::Yaml => match doc.to_yaml() {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("cannot write YAML: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    ExitCode::SUCCESS
}

fn import_openapi(spec: &Path, integration: wicket::openapi::import::Integration) -> ExitCode {
    let text = match std::fs::read_to_string(spec) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", spec.display());
            return ExitCode::FAILURE;
        }
    };
    let name = spec.file_name().map(|n| n.to_string_lossy().into_owned());
    match wicket::openapi::import::import(&text, name.as_deref().unwrap_or("spec"), integration) {
        Ok(imported) => {
            for w in &imported.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", imported.toml);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", spec.display());
            ExitCode::FAILURE
        }
    }
}

/// What each stage serves, one line per route, with where its canary goes: the routes two
/// stages would both answer are easy to spot.
fn stage_table(config: &GatewayConfig) -> String {
    let mut out = String::new();
    for stage in &config.stages {
        let at = match (&stage.host, &stage.base_path) {
            (Some(h), Some(b)) => format!("{h}{b}"),
            (Some(h), None) => h.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) => "/".to_string(),
        };
        out.push_str(&format!("stage {} ({at}):\n", stage.name));
        for route in config
            .routes
            .iter()
            .filter(|r| r.stage.as_ref() == Some(&stage.name))
        {
            let methods = match &route.methods {
                Some(ms) => ms
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                None => "ANY".to_string(),
            };
            let canary = route.canary.as_ref().map(|c| {
                let to = &config.routes[c.route];
                format!(
                    " (canary {}% -> stage {} route {:?})",
                    f64::from(c.basis_points) / 100.0,
                    to.stage.as_deref().unwrap_or("-"),
                    to.name
                )
            });
            out.push_str(&format!(
                "  {methods} {}{} -> route {:?}{}\n",
                route.host.as_deref().unwrap_or(""),
                route.path.as_str(),
                route.name,
                canary.unwrap_or_default()
            ));
        }
    }
    out
}

fn run(path: PathBuf, watch: bool) -> ExitCode {
    // The runtime's shape is in the config, parsed once here; a config that does not parse
    // is reported by `serve` below, on the default shape.
    let parsed = GatewayConfig::load_lenient(&path);
    let shape = match &parsed {
        Ok((config, _)) => config.server.runtime,
        Err(_) => RuntimeShape::PerCore { workers: 1 },
    };
    let runtime = match shape {
        RuntimeShape::PerCore { .. } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        RuntimeShape::MultiThread { workers } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(serve(path, parsed, watch));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Load, bind, and serve until a shutdown signal, then until every worker drained. `false`
/// when the config did not load.
async fn serve(path: PathBuf, parsed: Parsed, watch: bool) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let metrics = wicket::admin::install_recorder()?;
    let Some((config, services, gateway)) = load(parsed).await else {
        return Ok(false);
    };
    let tls = gateway.tls.is_some();
    let workers = match config.server.runtime {
        RuntimeShape::PerCore { workers } => workers,
        RuntimeShape::MultiThread { .. } => 1,
    };
    let mut listeners = deploy::bind_workers(config.server.listen, workers)
        .with_context(|| format!("binding {}", config.server.listen))?
        .into_iter();
    let first = listeners.next().expect("one listener per worker");
    let addr = first.local_addr()?;
    let listener = TcpListener::from_std(first)?;
    let (mut rebind, mut rebound) = (Vec::new(), Vec::new());
    for _ in 0..workers {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        rebind.push(tx);
        rebound.push(rx);
    }
    let mut rebound = rebound.into_iter();
    let own_rebind = rebound.next().expect("one channel per worker");
    let shared = Arc::new(ArcSwap::from_pointee(gateway));
    let proxy = deploy::ProxyListeners {
        configured: config.server.listen,
        rebind,
    };
    let deployer = Deployer::start(
        path,
        config.clone(),
        services,
        shared.clone(),
        proxy,
        metrics,
    )?;
    if watch {
        deploy::runtime().spawn(deploy::watch(deployer.clone()));
    }
    deploy::runtime().spawn(reopen_access_log_on_sigusr1(shared.clone()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::new();
    for (i, (std_listener, rebind)) in listeners.zip(rebound).enumerate() {
        let shared = shared.clone();
        let mut stopped = stopped.clone();
        let thread = std::thread::Builder::new()
            .name(format!("wicket-worker-{}", i + 1))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a worker runtime");
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("worker listener: {e}");
                            return;
                        }
                    };
                    let stop = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    };
                    wicket::server::serve(listener, shared, rebind, stop, workers).await;
                });
            })?;
        threads.push(thread);
    }
    tracing::info!(
        listener = "proxy",
        addr = %addr,
        tls,
        workers,
        routes = config.routes.len(),
        plugins = config.plugins.len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    wicket::server::serve(listener, shared.clone(), own_rebind, shutdown, workers).await;
    // The other workers drain on their own threads; then what the requests logged and
    // traced is written out before the process ends.
    for t in threads {
        let _ = t.join();
    }
    shared
        .load()
        .flush_telemetry(std::time::Duration::from_secs(2));
    Ok(true)
}

/// `SIGUSR1` reopens the access log file (logrotate renamed it): the lines after it go to a
/// new file at the configured path.
async fn reopen_access_log_on_sigusr1(shared: wicket::server::Shared) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        tracing::warn!("cannot listen for SIGUSR1: the access log will not be reopened");
        return;
    };
    while usr1.recv().await.is_some() {
        wicket::telemetry::access_log::reopen();
        if let Some(log) = &shared.load().access_log {
            log.wake();
        }
        tracing::info!("SIGUSR1: reopening the access log");
    }
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
        let plugins = match standalone_runtime() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let mut items: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        if files.is_empty() {
            for builtin in builtins::ALL {
                items.push((builtin.name.to_string(), None));
            }
        } else {
            for file in files {
                match std::fs::read(file) {
                    Ok(bytes) => items.push((file.display().to_string(), Some(bytes))),
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
            let source = match &bytes {
                Some(bytes) => Source::Wasm(bytes),
                None => Source::Builtin(builtins::find(&name).expect("listed above")),
            };
            match plugins.describe_component(source).await {
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
