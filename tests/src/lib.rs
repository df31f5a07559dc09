//! The end-to-end harness: start the real `wicket` binary with a config string, real upstream
//! servers, build the test plugins, and stop everything on drop, so each test reads as a
//! dozen lines of requests and assertions.

pub mod normalizing;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory this test binary was built in (`<target>/<profile>/deps/x-hash`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The `wicket` binary built alongside the tests (`cargo test --workspace` builds it for the
/// host crate's own integration tests).
pub fn wicket_bin() -> PathBuf {
    let bin = profile_dir().join("wicket");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Compiled plugins are cached here, shared by every test, so each is compiled once.
fn cache_dir() -> PathBuf {
    profile_dir().join("wicket-test-cache")
}

/// A running gateway, killed on drop.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Start `wicket run` with `config` (TOML). Use `listen = "127.0.0.1:0"`: the harness
    /// reads the bound addresses from the log.
    pub fn start(config: &str) -> Gateway {
        Self::try_start(config).unwrap_or_else(|logs| panic!("wicket did not start:\n{logs}"))
    }

    /// Like `start`, with more arguments to `wicket run` (`--watch`).
    pub fn start_with(config: &str, args: &[&str]) -> Gateway {
        Self::try_start_with(config, args)
            .unwrap_or_else(|logs| panic!("wicket did not start:\n{logs}"))
    }

    /// Like `start`, but returns the log when the gateway exits instead of listening.
    pub fn try_start(config: &str) -> Result<Gateway, String> {
        Self::try_start_with(config, &[])
    }

    /// Like `try_start`, with AWS credentials only from `env` (`AWS_ACCESS_KEY_ID`, ...,
    /// `AWS_SHARED_CREDENTIALS_FILE`): none of the test process's, and no `~/.aws` files
    /// unless `env` names them.
    pub fn try_start_aws(config: &str, env: &[(&str, &str)]) -> Result<Gateway, String> {
        Self::spawn(config, &[], env)
    }

    /// `try_start_aws` that panics with the log when the gateway does not start.
    pub fn start_aws(config: &str, env: &[(&str, &str)]) -> Gateway {
        Self::try_start_aws(config, env)
            .unwrap_or_else(|logs| panic!("wicket did not start:\n{logs}"))
    }

    fn try_start_with(config: &str, args: &[&str]) -> Result<Gateway, String> {
        Self::spawn(config, args, &[])
    }

    fn spawn(config: &str, args: &[&str], aws_env: &[(&str, &str)]) -> Result<Gateway, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(wicket_bin());
        if !aws_env.is_empty() {
            for var in AWS_VARS {
                command.env_remove(var);
            }
            let nowhere = dir.path().join("no-aws-files");
            command
                .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
                .env("AWS_CONFIG_FILE", &nowhere)
                .envs(aws_env.iter().copied());
        }
        let mut child = command
            .args(["--log-format", "json", "run", "--config"])
            .arg(&path)
            .args(args)
            .env("RUST_LOG", "info")
            .env("WICKET_CACHE_DIR", cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning wicket");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        // Standard output carries the access log lines: kept with the rest of the log.
        let stdout = child.stdout.take().unwrap();
        let access = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                access.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["message"] == "listening" {
                        let addr: SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
                        let _ = tx.send((v["listener"].as_str().unwrap().to_string(), addr));
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut admin = None;
        loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok((listener, addr)) if listener == "proxy" => {
                    return Ok(Gateway {
                        child,
                        addr,
                        admin,
                        logs,
                        _dir: dir,
                    });
                }
                Ok((_, addr)) => admin = Some(addr),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    return Err(logs.lock().unwrap().join("\n"));
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{}",
            self.admin.expect("config has no admin listener"),
            path
        )
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Log lines so far (JSON, one per line; the access log's lines on standard output
    /// included).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Whether a log line satisfying `pred` appears within `timeout`. The log is read from
    /// the gateway's stderr by another thread, so a line can trail the response it belongs to.
    pub fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.logs.lock().unwrap().iter().any(|l| pred(l)) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The config file the gateway was started with, to change and reload.
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("gateway.toml")
    }

    /// A file next to the config (for `config_files`, `wasm`), written with `contents`.
    pub fn write_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self._dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Send the process a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait up to `timeout` for the process to exit; its status, or `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The gateway's process id, for reading its memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `wicket check` on `config`, written to a file named `name` in a fresh directory.
/// Returns (success, stdout + stderr, the config's path).
pub fn check(name: &str, config: &str) -> (bool, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join(name);
    std::fs::write(&path, config).unwrap();
    let out = Command::new(wicket_bin())
        .args(["check", "--config"])
        .arg(&path)
        .env("WICKET_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text, path)
}

/// The environment variables of the AWS credential chain, which `Gateway::start_aws` controls.
const AWS_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
];

/// A helper server written in Python (`tests/aws/NAME.py`, with the tools `./test.sh`
/// installs): started with `args`, it prints one JSON line about itself (its port, keys) and
/// serves until its stdin closes, which dropping this does.
pub struct PythonServer {
    child: Child,
    /// The JSON line it printed.
    pub info: serde_json::Value,
}

impl PythonServer {
    pub fn start(script: &str, args: &[&str]) -> PythonServer {
        use std::io::{Read, Seek};
        let path = root().join("tests/aws").join(script);
        // Its log goes to a file, not a pipe nobody reads (which would block it once full).
        let mut log = tempfile::tempfile().unwrap();
        let mut child = Command::new("python3")
            .env("PATH", tools_path())
            .arg(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("{script}: cannot run python3 ({e}); {INSTALL_HINT}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim().is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            let mut text = String::new();
            log.rewind().unwrap();
            log.read_to_string(&mut text).unwrap();
            panic!("{script} did not start; {INSTALL_HINT}\n{text}");
        }
        let info = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{script}: {e}: {line}"));
        PythonServer { child, info }
    }

    /// `http://127.0.0.1:PORT` of the server.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.info["port"])
    }

    /// A string the server printed about itself.
    pub fn get(&self, key: &str) -> &str {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not in {}", self.info))
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        // Closing stdin asks it to stop; kill in case it does not.
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking-friendly HTTP client with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A real upstream server on 127.0.0.1, run on its own threads.
///
/// - `/echo/...` answers with the request body as received.
/// - `/slow/...?ms=N` waits N ms, then answers like the default.
/// - anything else answers 200 with JSON describing the request: method, path, query,
///   headers (name -> list of values), body length and SHA-256.
pub struct Upstream {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        serve_on_thread(service_fn(upstream))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serve `service` (HTTP/1.1 and h2c) on 127.0.0.1 from a runtime on its own thread, so it
/// works the same from sync and async tests; stops when the returned handle drops.
pub fn serve_on_thread<S, RB>(service: S) -> Upstream
where
    RB: hyper::body::Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<RB>,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let accept = async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let service = service.clone();
                    tokio::spawn(async move {
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            };
            tokio::select! {
                () = accept => {},
                _ = stopped => {},
            }
        });
        runtime.shutdown_background();
    });
    Upstream {
        addr,
        stop: Some(stop),
    }
}

async fn upstream(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    if path.starts_with("/echo") {
        let mut resp = hyper::Response::new(Full::new(body));
        if let Some(ct) = parts.headers.get("content-type") {
            resp.headers_mut().insert("content-type", ct.clone());
        }
        return Ok(resp);
    }
    if path.starts_with("/slow") {
        let ms: u64 = parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("ms="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<serde_json::Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        headers.insert(name.as_str().to_string(), values.into());
    }
    let description = serde_json::json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body.len(),
        "body_sha256": sha256_hex(&body),
    });
    let mut resp = hyper::Response::new(Full::new(Bytes::from(description.to_string())));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp.headers_mut()
        .insert("x-upstream", "1".parse().unwrap());
    Ok(resp)
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Run `build` at most once across the test processes of one run: an in-process OnceLock,
/// and a file lock for the test binaries cargo runs one after another (or in parallel).
fn build_once(what: &str, output: &Path, build: impl FnOnce()) {
    let lock_path = profile_dir().join(format!("{what}.lock"));
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    if !output.is_file() {
        build();
    }
    assert!(
        output.is_file(),
        "building {what} did not produce {}",
        output.display()
    );
    lock.unlock().unwrap();
}

fn test_plugins_target() -> PathBuf {
    profile_dir().join("test-plugins")
}

/// The purpose-built plugins of `tests/plugins`, built for wasm32-wasip2 on first use.
pub fn test_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let wasm = test_plugins_target()
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{name}.wasm"));
    BUILT.get_or_init(|| {
        // Always ask cargo: it rebuilds only when the plugin sources changed.
        let lock_path = profile_dir().join("test-plugins.lock");
        let lock = std::fs::File::create(&lock_path).unwrap();
        lock.lock().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root().join("tests").join("plugins"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", test_plugins_target())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("running cargo for tests/plugins");
        assert!(status.success(), "building tests/plugins failed");
        lock.unlock().unwrap();
    });
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    wasm
}

/// How to get the tools the tests run beside the gateway, for their failure messages.
const INSTALL_HINT: &str = "run ./test.sh (the test command): it installs redis-server, and \
componentize-py, botocore, PyJWT[crypto], prometheus-client, openapi-spec-validator, selenium and \
moto[server] into a virtual environment in the target directory, componentize-js next to it, clang \
with wasi-libc, and wit-bindgen and wasm-tools into <target>/c-tools, then runs the tests";

/// The virtual environment `./test.sh` installs the Python tools into (`<target>/python-venv`).
fn python_venv() -> PathBuf {
    profile_dir().parent().unwrap().join("python-venv")
}

/// PATH with the venv's `bin` first when it exists, so `python3` and `componentize-py` are the
/// ones `./test.sh` installed even when the tests run under plain `cargo test`.
pub fn tools_path() -> std::ffi::OsString {
    let mut dirs = Vec::new();
    let target = profile_dir().parent().unwrap().to_path_buf();
    for bin in [
        python_venv().join("bin"),
        target.join("js-tools/node_modules/.bin"),
        target.join("c-tools/bin"),
    ] {
        if bin.is_dir() {
            dirs.push(bin);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap()
}

/// Run `python3 -c script` with `input` on stdin and return its stdout. `what` names the job
/// ("botocore", "PyJWT") for the failure message, which says how to install the tools.
pub fn run_python(what: &str, script: &str, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .env("PATH", tools_path())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot run python3 ({e}); {INSTALL_HINT}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        panic!("{what}: a Python module is missing; {INSTALL_HINT}\n{stderr}");
    }
    assert!(out.status.success(), "{what}: {stderr}");
    out.stdout
}

/// The Python example plugin, built with componentize-py on first use.
pub fn python_plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| example("python-filter")).clone()
}

/// The Python example function (`plugins/examples/python-function`).
pub fn python_function() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| example("python-function")).clone()
}

/// The JavaScript example filter (`plugins/examples/js-filter`), built with componentize-js.
pub fn js_filter() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| example("js-filter")).clone()
}

/// The C example filter (`plugins/examples/c-filter`), built with clang, wit-bindgen and
/// wasm-tools.
pub fn c_filter() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| example("c-filter")).clone()
}

/// The WASI preview1 reactor adapter of the gateway's wasmtime (48), which C components are
/// built with; the tests write it from the same crate the gateway embeds it from.
pub fn wasi_adapter() -> PathBuf {
    let path = test_plugins_target().join("wasi_snapshot_preview1.reactor.wasm");
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    if std::fs::read(&path).ok().as_deref() != Some(bytes) {
        std::fs::create_dir_all(test_plugins_target()).unwrap();
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// Run `wicket` with `args` (the compile cache of the tests); returns (success, stdout,
/// stderr).
pub fn wicket(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(wicket_bin())
        .args(args)
        .env("WICKET_CACHE_DIR", cache_dir())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `wicket plugin new NAME --lang LANG --kind KIND` into a fresh folder, then its
/// `build.sh` with the tools `./test.sh` installs (Rust projects share one target directory,
/// so only the first build compiles the SDK's dependencies). Returns the project folder and
/// the component.
pub fn scaffold(name: &str, lang: &str, kind: &str) -> (PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep().join(name);
    let (ok, out, err) = wicket(&[
        "plugin",
        "new",
        name,
        "--lang",
        lang,
        "--kind",
        kind,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "wicket plugin new failed:\n{out}{err}");
    let _lock = if lang == "rust" {
        let lock = std::fs::File::create(profile_dir().join("scaffold-rust.lock")).unwrap();
        lock.lock().unwrap();
        Some(lock)
    } else {
        None
    };
    let output = Command::new("bash")
        .arg(dir.join("build.sh"))
        .env("PATH", tools_path())
        .env("CARGO_TARGET_DIR", test_plugins_target().join("scaffolds"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the {lang} scaffold failed; if its tool is not installed, {INSTALL_HINT}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    (dir, wasm)
}

/// `wicket plugin test WASM ARGS... --json`: (success, the report, stderr). The report is
/// `Null` when the plugin did not load.
pub fn plugin_test(wasm: &Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let mut all = vec!["plugin", "test", wasm.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = wicket(&all);
    let report = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (ok, report, err)
}

/// Build `plugins/examples/NAME` with its `build.sh` (componentize-py or componentize-js), into
/// a file keyed by the hash of its sources and the WIT contract, so a change rebuilds it and
/// nothing else does.
fn example(name: &str) -> PathBuf {
    let src = root().join("plugins").join("examples").join(name);
    let mut sources = Sha256::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .chain(std::fs::read_dir(root().join("wit")).unwrap())
        .chain(std::fs::read_dir(src.join("wit")).into_iter().flatten())
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| ["py", "js", "sh", "wit", "c", "h"].iter().any(|e| x == *e))
        })
        .collect();
    files.sort();
    for f in files {
        sources.update(std::fs::read(f).unwrap());
    }
    let key: String = sources.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = test_plugins_target().join(format!("{name}-{key}.wasm"));
    std::fs::create_dir_all(test_plugins_target()).unwrap();
    build_once(name, &out, || {
        let status = Command::new("bash")
            .arg(src.join("build.sh"))
            .arg(&out)
            .env("PATH", tools_path())
            .env("WASI_ADAPTER", wasi_adapter())
            .status()
            .unwrap_or_else(|e| panic!("running plugins/examples/{name}/build.sh: {e}"));
        assert!(
            status.success(),
            "building {name} failed; if its tool is not installed, {INSTALL_HINT}"
        );
    });
    out
}

/// The Rust example function (`plugins/examples/rust-function`, a workspace of its own), built
/// with cargo for wasm32-wasip2 on first use.
pub fn rust_function() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = test_plugins_target().join("rust-function");
            let lock = std::fs::File::create(profile_dir().join("rust-function.lock")).unwrap();
            lock.lock().unwrap();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(
                    root()
                        .join("plugins")
                        .join("examples")
                        .join("rust-function"),
                )
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .status()
                .expect("running cargo for plugins/examples/rust-function");
            assert!(
                status.success(),
                "building plugins/examples/rust-function failed"
            );
            lock.unlock().unwrap();
            target.join("wasm32-wasip2/release/notes_function.wasm")
        })
        .clone()
}

/// A real `redis-server` on a free loopback port, with no persistence, stopped on drop.
/// `stop` and `restart` (same port) let tests take Redis away mid-test and bring it back.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer { port, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Start (again) on the same port and wait until it answers PING.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis is already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}); {INSTALL_HINT}"));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Kill the server (as an outage would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Base64 of `bytes`: unpadded base64url (JOSE) or padded standard (HTTP Basic).
pub fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// A process's resident memory now and at its peak, in KiB (`VmRSS`, `VmHWM`).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
