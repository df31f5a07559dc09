#!/usr/bin/env python3
"""Wicket benchmark: Wicket against a direct upstream and nginx, measured in one run.

    python3 bench/run.py            # full: 5 rounds, every arm
    python3 bench/run.py --quick    # smoke check, under 2 minutes once built

Builds release binaries, starts a 1 KiB upstream (bench-upstream), nginx (1 worker, upstream
keep-alive) and one Wicket process per arm, all on 127.0.0.1. The proxy under test runs alone
on core 1; the load generators and the upstream share core 0. Arms run in a new random order
every round so drift hits all of them alike; figures are medians over the rounds.

Arms: the load generator's ceiling is `direct` (straight to the upstream); `hyper-floor`, a plain
hyper proxy (bench/src/bin/hyper-floor.rs) that is the floor for Wicket's own cost; nginx;
Wicket with 0, 1, 2, 5, 10 no-op filters (pooled and fresh); the realistic chain api-key ->
quota -> headers -> http; a cache hit; `wicket-0-traced`, wicket-0 with every request traced and
its spans exported over OTLP/HTTP (to the upstream, which discards them). Then streams: SSE (time from the upstream's write to
the client's read, per event) and a 1 GiB download (throughput, peak RSS), for direct, nginx
and Wicket.

Per arm: saturation throughput (wrk -t1 -c32, closed loop), CPU time and minor page faults
per request of the proxy process (from /proc), its peak RSS, and latency percentiles at a
fixed offered load (bench's own open-loop `loadgen`, latency counted from each request's due
time) at 50% of the slowest arm's saturation. Writes a table to stdout and
bench/results/latest.json. Every load is bounded in time; nothing leaves loopback.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"
PLUGIN_TARGET = TARGET / "bench-plugins"
LOAD_CORE, PROXY_CORE = "0", "1"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tools():
    missing = [p for p, b in (("nginx", "nginx"), ("wrk", "wrk")) if shutil.which(b) is None]
    if missing:
        sh(["apt-get", "update", "-qq"])
        sh(["apt-get", "install", "-y", "-qq", *missing], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def build():
    sh(["cargo", "build", "--release", "-p", "wicket", "-p", "wicket-bench"], cwd=ROOT)
    env = {**os.environ, "CARGO_TARGET_DIR": str(PLUGIN_TARGET)}
    sh(["cargo", "build", "--release", "--target", "wasm32-wasip2", "-p", "noop"], cwd=ROOT / "tests" / "plugins", env=env)
    return PLUGIN_TARGET / "wasm32-wasip2" / "release" / "noop.wasm"


def wait_http(url, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers={"x-api-key": "bench"})
            with urllib.request.urlopen(req, timeout=2) as r:
                r.read()
                return True
        except Exception:
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class Proc:
    """A server process pinned to a core, killed at exit."""

    def __init__(self, name, cmd, core, env=None, cwd=None):
        self.name = name
        self.p = subprocess.Popen(
            ["taskset", "-c", core, *map(str, cmd)],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tempfile.gettempdir()) / f"wicket-bench-{name}.log", "w"),
            env=env,
            cwd=cwd,
        )

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()


def pids_of(proc):
    """The process and its children (nginx's worker does the work)."""
    out = [proc.pid]
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        out += [int(c) for c in children]
    except OSError:
        pass
    return out


def proc_counters(proc):
    """(run ns, wait ns, minor faults) summed over the process tree's threads."""
    run = wait = minflt = 0
    for pid in pids_of(proc):
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                r, w, _ = (task / "schedstat").read_text().split()
                run += int(r)
                wait += int(w)
                minflt += int((task / "stat").read_text().rsplit(")", 1)[1].split()[7])
            except (OSError, ValueError, IndexError):
                pass
    return run, wait, minflt


def peak_rss_kib(proc):
    total = 0
    for pid in pids_of(proc):
        m = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        total += int(m.group(1)) if m else 0
    return total


def cpu_pressure():
    try:
        m = re.search(r"some avg10=([\d.]+)", Path("/proc/pressure/cpu").read_text())
        return float(m.group(1))
    except OSError:
        return 0.0


def quiet(limit=20.0, patience=5.0):
    deadline = time.monotonic() + patience
    while cpu_pressure() > limit and time.monotonic() < deadline:
        time.sleep(0.25)


def wrk(url, seconds):
    out = subprocess.run(
        ["taskset", "-c", LOAD_CORE, "wrk", "-t1", "-c32", f"-d{seconds}s", "-H", "x-api-key: bench", url],
        check=True, capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout) (\d+)", out))
    return rps, total, errors


def loadgen(url, rate, seconds):
    out = subprocess.run(
        ["taskset", "-c", LOAD_CORE, RELEASE / "loadgen", url, str(rate), str(seconds), "64"],
        check=True, capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    return json.loads(out)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream backend {{
        server 127.0.0.1:{upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_max_temp_file_size 0;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def wicket_config(port, upstream, filters, isolation, noop):
    lines = [
        "[server]",
        f'listen = "127.0.0.1:{port}"',
        "access_log = false",
        "",
        "[plugins.backend]",
        'builtin = "http"',
        f'config = {{ url = "http://127.0.0.1:{upstream}/{{path+}}" }}',
    ]
    for i in range(filters):
        lines += ["", f"[plugins.noop{i}]", f"wasm = {json.dumps(str(noop))}", f'isolation = "{isolation}"']
    chain = ", ".join(f'"noop{i}"' for i in range(filters))
    lines += ["", "[[routes]]", 'path = "/{path+}"', f"plugins = [{chain}]", 'integration = "backend"']
    return "\n".join(lines) + "\n"



def chain_config(port, upstream):
    """The realistic chain: API key, a quota that never refuses, fixed headers, the forward."""
    import hashlib
    key_sha = hashlib.sha256(b"bench").hexdigest()
    return "\n".join([
        "[server]", f'listen = "127.0.0.1:{port}"', "access_log = false", "",
        "[plugins.key]", 'builtin = "api-key"',
        f'config = {{ keys = [{{ key_sha256 = "{key_sha}", principal = "bench", plan = "gold" }}] }}', "",
        "[plugins.quota]", 'builtin = "quota"', 'config = { rate = 1000000000, burst = 1000000000, by = "principal" }', "",
        "[plugins.stamp]", 'builtin = "headers"',
        'config = { request = { set = { "x-api-version" = "1" } }, response = { set = { "x-served-by" = "wicket" } } }', "",
        "[plugins.backend]", 'builtin = "http"', f'config = {{ url = "http://127.0.0.1:{upstream}/{{path+}}" }}', "",
        "[[routes]]", 'path = "/{path+}"', 'plugins = ["key", "quota", "stamp"]', 'integration = "backend"',
    ]) + "\n"


def cache_config(port, upstream):
    """Every request after the first is a cache hit."""
    return "\n".join([
        "[server]", f'listen = "127.0.0.1:{port}"', "access_log = false", "",
        "[plugins.cache]", 'builtin = "cache"', "config = { ttl_s = 3600 }", "",
        "[plugins.backend]", 'builtin = "http"', f'config = {{ url = "http://127.0.0.1:{upstream}/{{path+}}" }}', "",
        "[[routes]]", 'path = "/{path+}"', 'plugins = ["cache"]', 'integration = "backend"',
    ]) + "\n"


def sse_latency(url, events=100):
    """Per-event delay (us) from the upstream's write to this client's read, p50 and p99. The
    first event rides with the response head (connection set-up, routing): it is left out."""
    t0 = time.time()
    delays = []
    seen = 0
    with urllib.request.urlopen(url, timeout=30) as r:
        for line in r:
            if line.startswith(b"data: "):
                sent_ns = int(line[6:].strip())
                seen += 1
                if seen > 1:
                    delays.append((time.time_ns() - sent_ns) / 1000)
                if len(delays) >= events:
                    break
    delays.sort()
    pick = lambda p: round(delays[min(len(delays) - 1, int(len(delays) * p))])
    return {"events": len(delays), "p50_us": pick(0.5), "p99_us": pick(0.99), "seconds": round(time.time() - t0, 2)}


def download(url, proc):
    """Throughput of a 1 GiB download through `url` and the proxy's peak RSS during it."""
    t0 = time.monotonic()
    out = subprocess.run(["taskset", "-c", LOAD_CORE, "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                          "-H", "x-api-key: bench", url], check=True, capture_output=True, text=True, timeout=120).stdout
    took = time.monotonic() - t0
    size = int(out)
    return {"bytes": size, "mib_per_s": round(size / took / (1 << 20)), "peak_rss_mib": round(peak_rss_kib(proc) / 1024, 1) if proc else None}


# A minimal working config for each built-in, for the start-up measurement.
EXAMPLES = {
    "http": 'url = "http://127.0.0.1:{upstream}/"',
    "mock": "",
    "headers": 'request = { set = { "x-a" = "1" } }',
    "api-key": 'keys = [{ key_sha256 = "' + "0" * 64 + '", principal = "p" }]',
    "cors": 'allow_origins = ["https://app.example.com"]',
    "validate": 'required_headers = ["x-a"], body_required = false',
    "sigv4": 'credentials = [{ access_key = "AKIDEXAMPLE", secret_key = "secret", principal = "p" }], region = "us-east-1"',
    "xml-json": 'request = "xml-to-json"',
    "jwt": 'hs_secret = "0123456789abcdef0123456789abcdef"',
    "quota": "rate = 10",
    "introspect": 'introspection_url = "http://127.0.0.1:{upstream}/introspect", client_id = "g", client_secret = "s"',
    "cache": "ttl_s = 60",
    "json-map": 'request = { body = "." }',
}


def measure_startup(workdir, upstream):
    """Time from exec to the first proxied 200, with an empty and with a warm compile cache,
    with one instance of every built-in configured (each is compiled and asked to check its
    config at start-up)."""
    port = free_port()
    out = subprocess.run([RELEASE / "wicket", "plugins"], check=True, capture_output=True, text=True).stdout
    names = re.findall(r"^(\S+) \((?:filter|integration)\)", out, re.M)
    included = [n for n in names if n in EXAMPLES]
    lines = ["[server]", f'listen = "127.0.0.1:{port}"', ""]
    for n in included:
        cfg = EXAMPLES[n].replace("{upstream}", str(upstream))
        lines += [f"[plugins.{n}]", f'builtin = "{n}"', f"config = {{ {cfg} }}", ""]
    lines += ["[[routes]]", 'path = "/{path+}"', 'integration = "http"']
    cfg = workdir / "startup.toml"
    cfg.write_text("\n".join(lines) + "\n")
    results = {}
    for label in ("cold", "warm"):
        cache = workdir / "startup-cache"
        if label == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        env = {**os.environ, "WICKET_CACHE_DIR": str(cache)}
        t0 = time.monotonic()
        p = subprocess.Popen([RELEASE / "wicket", "run", "--config", cfg], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/x", timeout=60)
            results[label + "_ms"] = round((time.monotonic() - t0) * 1000, 1)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
    results["plugins"] = included
    results["not_included"] = [n for n in names if n not in EXAMPLES]
    return results


def median_spread(values):
    m = statistics.median(values)
    spread = (max(values) - min(values)) / m if m else 0.0
    return m, spread


def main():
    # A timeout or Ctrl-C must still stop every server this run started (see `finally`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round, short loads, fewer arms")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--streams-only", action="store_true", help="only the SSE and 1 GiB measurements")
    ap.add_argument("--startup-only", action="store_true", help="only the start-up times (cold and warm)")
    ap.add_argument("--arms", help="comma-separated arms to measure (saturation and CPU only), e.g. "
                    "hyper-floor,wicket-0,wicket-pooled-1")
    args = ap.parse_args()
    if os.cpu_count() < 2:
        sys.exit("needs 2 cores: one for the proxy, one for load and upstream")

    rounds, sat_s, lat_s = (1, 3, 3) if args.quick else (5, 4, 4)
    counts = (1, 5) if args.quick else (1, 2, 5, 10)
    ensure_tools()
    noop = PLUGIN_TARGET / "wasm32-wasip2" / "release" / "noop.wasm"
    if not args.no_build:
        noop = build()

    workdir = Path(tempfile.mkdtemp(prefix="wicket-bench-"))
    cache = workdir / "cache"
    procs = []
    try:
        up_port = free_port()
        procs.append(Proc("upstream", [RELEASE / "bench-upstream", f"127.0.0.1:{up_port}"], LOAD_CORE))
        wait_http(f"http://127.0.0.1:{up_port}/")
        if args.startup_only:
            print(json.dumps(measure_startup(workdir, up_port)))
            return
        # Each proxy runs only while it is measured, so that idle arms (their timers and
        # epoch tickers) never share core 1 with the arm under test.
        env = {**os.environ, "WICKET_CACHE_DIR": str(cache), "RUST_LOG": "warn"}
        nginx_port = free_port()
        (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, upstream=up_port, port=nginx_port))
        starters = {
            "direct": lambda: (None, f"http://127.0.0.1:{up_port}/"),
            "nginx": lambda: (Proc("nginx", ["nginx", "-c", workdir / "nginx.conf", "-p", workdir], PROXY_CORE),
                              f"http://127.0.0.1:{nginx_port}/"),
        }
        floor_port = free_port()
        starters["hyper-floor"] = lambda: (
            Proc("hyper-floor", [RELEASE / "hyper-floor", f"127.0.0.1:{floor_port}", f"127.0.0.1:{up_port}"], PROXY_CORE),
            f"http://127.0.0.1:{floor_port}/")
        for name, make in (("wicket-chain", chain_config), ("wicket-cache-hit", cache_config)):
            port = free_port()
            cfg = workdir / f"{name}.toml"
            cfg.write_text(make(port, up_port))
            starters[name] = (lambda name=name, cfg=cfg, port=port: (
                Proc(name, [RELEASE / "wicket", "run", "--config", cfg], PROXY_CORE, env=env),
                f"http://127.0.0.1:{port}/x"))
        variants = [("wicket-0", 0, "pooled")]
        for n in counts:
            variants += [(f"wicket-pooled-{n}", n, "pooled"), (f"wicket-fresh-{n}", n, "request")]
        # Tracing on: every request sampled and exported (OTLP/HTTP) to the upstream, which
        # answers 200 and discards the spans; against wicket-0, the cost of tracing.
        variants += [("wicket-0-traced", 0, "pooled")]
        for name, n, isolation in variants:
            port = free_port()
            cfg = workdir / f"{name}.toml"
            text = wicket_config(port, up_port, n, isolation, noop)
            if name.endswith("-traced"):
                text += f'\n[telemetry]\notlp_endpoint = "http://127.0.0.1:{up_port}/v1/traces"\nsample_ratio = 1.0\n'
            cfg.write_text(text)
            starters[name] = (lambda name=name, cfg=cfg, port=port: (
                Proc(name, [RELEASE / "wicket", "run", "--config", cfg], PROXY_CORE, env=env),
                f"http://127.0.0.1:{port}/x"))
        arms = starters
        if args.arms:
            wanted = args.arms.split(",")
            unknown = [a for a in wanted if a not in starters]
            if unknown:
                sys.exit(f"unknown arms {unknown}; arms are {list(starters)}")
            arms = {k: v for k, v in starters.items() if k in wanted}
        rss = {}

        def start(name):
            proc, url = arms[name]()
            if proc:
                procs.append(proc)
            wait_http(url)
            return proc, url

        def stop(name, proc):
            if proc:
                rss[name] = max(rss.get(name, 0), peak_rss_kib(proc))
                proc.stop()
                procs.remove(proc)

        results = {name: {"rps": [], "cpu_us": [], "minflt": [], "delayed": []} for name in arms}
        if args.streams_only:
            rounds = 0
        for r in range(rounds):
            order = list(arms)
            random.shuffle(order)
            log(f"round {r + 1}/{rounds}: saturation, order {order}")
            for name in order:
                proc, url = start(name)
                wrk(url, 1)  # warm-up: connections, pools, first compilation of nothing
                quiet()
                before = proc_counters(proc) if proc else None
                t0 = time.monotonic()
                rps, total, errors = wrk(url, sat_s)
                wall = time.monotonic() - t0
                res = results[name]
                res["rps"].append(rps)
                if errors:
                    log(f"  {name}: {errors} errors")
                if proc:
                    run, wait, flt = (a - b for a, b in zip(proc_counters(proc), before))
                    res["cpu_us"].append(run / total / 1000)
                    res["minflt"].append(flt / total)
                    res["delayed"].append(wait / (wall * 1e9))
                stop(name, proc)
        if args.arms:
            for name in arms:
                r = results[name]
                cpu = statistics.median(r["cpu_us"]) if r["cpu_us"] else float("nan")
                print(f"{name:20} {statistics.median(r['rps']):>10,.0f} req/s  {cpu:6.1f} us CPU/req  "
                      f"(rps {[round(x) for x in r['rps']]})")
            return
        proxies = [n for n in arms if n != "direct"]
        slowest = min((statistics.median(results[n]["rps"]) for n in proxies if results[n]["rps"]), default=200)
        rate = max(100, int(slowest * 0.5))
        for name in arms:
            results[name]["lat"] = []
        for r in range(rounds):
            order = list(arms)
            random.shuffle(order)
            log(f"round {r + 1}/{rounds}: latency at {rate} req/s")
            for name in order:
                proc, url = start(name)
                wrk(url, 1)
                quiet()
                results[name]["lat"].append(loadgen(url, rate, lat_s))
                stop(name, proc)

        streams = {}
        for name in ("direct", "nginx", "wicket-0"):
            proc, url = start(name)
            base_url = url.rsplit("/", 1)[0]
            try:
                streams[name] = {
                    "sse": sse_latency(f"{base_url}/events?n={50 if args.quick else 200}&ms=10"),
                    "download_1gib": download(f"{base_url}/big?mb=1024", proc),
                }
            except Exception as e:
                log(f"stream measurement of {name} failed: {e}")
                streams[name] = {"error": str(e)}
            stop(name, proc)

        if args.streams_only:
            for name, st in streams.items():
                print(name, json.dumps(st))
            return
        try:
            startup = measure_startup(workdir, up_port)
        except Exception as e:  # the load figures are worth keeping without it
            log(f"start-up measurement failed: {e}")
            startup = {"error": str(e), "plugins": [], "cold_ms": None, "warm_ms": None}

        report = {"machine": {"cores": os.cpu_count()}, "rounds": rounds, "saturation_seconds": sat_s,
                  "latency_seconds": lat_s, "latency_offered_rps": rate, "startup": startup, "streams": streams,
                  "arms": {}}
        base = lambda n, key: statistics.median(results[n][key]) if results[n][key] else None
        nginx_rps, w0_rps = base("nginx", "rps"), base("wicket-0", "rps")
        floor_rps, floor_cpu = base("hyper-floor", "rps"), base("hyper-floor", "cpu_us")
        direct_lat = {k: statistics.median(x[k] for x in results["direct"]["lat"]) for k in ("p50_us", "p99_us", "p999_us")}
        for name in arms:
            res = results[name]
            rps, spread = median_spread(res["rps"])
            lat = {k: statistics.median(x[k] for x in res["lat"]) for k in ("p50_us", "p99_us", "p999_us")}
            entry = {
                "rps": round(rps), "rps_spread": round(spread, 3), "rps_vs_nginx": round(rps / nginx_rps, 3),
                "rps_vs_wicket0": round(rps / w0_rps, 3), "rps_vs_floor": round(rps / floor_rps, 3),
                "latency_us": lat, "latency_over_direct_us": {k: lat[k] - direct_lat[k] for k in lat},
                "latency_errors": sum(x["errors"] for x in res["lat"]),
            }
            if res["cpu_us"]:
                entry["cpu_us_per_req"] = round(statistics.median(res["cpu_us"]), 2)
                entry["cpu_vs_floor"] = round(statistics.median(res["cpu_us"]) / floor_cpu, 3)
                entry["minflt_per_req"] = round(statistics.median(res["minflt"]), 3)
                entry["max_cpu_wait_fraction"] = round(max(res["delayed"]), 3)
                entry["peak_rss_kib"] = rss.get(name, 0)
            entry["flags"] = [f for f, bad in (("spread>15%", spread > 0.15),
                                                ("cpu-wait>5%", entry.get("max_cpu_wait_fraction", 0) > 0.05)) if bad]
            report["arms"][name] = entry
        # Cost per plugin: slope of CPU per request over the number of no-op filters.
        for iso in ("pooled", "fresh"):
            pts = [(0, report["arms"]["wicket-0"]["cpu_us_per_req"])] + [
                (n, report["arms"][f"wicket-{iso}-{n}"]["cpu_us_per_req"]) for n in counts]
            xs, ys = zip(*pts)
            mx, my = statistics.mean(xs), statistics.mean(ys)
            slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x in xs)
            report[f"cpu_us_per_{iso}_plugin"] = round(slope, 2)

        out = ROOT / "bench" / "results" / "latest.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print_table(report)
        print(f"\nwritten to {out.relative_to(ROOT)}")
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(report):
    hdr = f"{'arm':<18}{'req/s':>9}{'spread':>8}{'/nginx':>8}{'/floor':>8}{'/w-0':>7}{'cpu us/req':>11}{'cpu/floor':>10}{'flt/req':>8}{'rss MiB':>8}" \
          f"{'p50 us':>8}{'p99 us':>8}{'p99.9 us':>9}  flags"
    print(f"saturation: wrk -t1 -c32; latency: open loop at {report['latency_offered_rps']} req/s; "
          f"median of {report['rounds']} rounds")
    print(hdr)
    print("-" * len(hdr))
    for name, a in report["arms"].items():
        cpu = f"{a['cpu_us_per_req']:.1f}" if "cpu_us_per_req" in a else "-"
        cpuf = f"{a['cpu_vs_floor']:.2f}" if "cpu_vs_floor" in a else "-"
        flt = f"{a['minflt_per_req']:.2f}" if "minflt_per_req" in a else "-"
        rss = f"{a['peak_rss_kib'] / 1024:.1f}" if "peak_rss_kib" in a else "-"
        lat = a["latency_us"]
        print(f"{name:<18}{a['rps']:>9}{a['rps_spread']:>8.1%}{a['rps_vs_nginx']:>8.2f}{a['rps_vs_floor']:>8.2f}{a['rps_vs_wicket0']:>7.2f}"
              f"{cpu:>11}{cpuf:>10}{flt:>8}{rss:>8}{lat['p50_us']:>8}{lat['p99_us']:>8}{lat['p999_us']:>9}  {' '.join(a['flags'])}")
    print(f"\nCPU per no-op plugin: pooled {report['cpu_us_per_pooled_plugin']} us, "
          f"fresh {report['cpu_us_per_fresh_plugin']} us")
    print("\nstreams (SSE: upstream write -> client read per event; 1 GiB download)")
    for name, st in report["streams"].items():
        if "error" in st:
            print(f"  {name:<10} error: {st['error']}")
            continue
        sse, dl = st["sse"], st["download_1gib"]
        rss = f", proxy peak RSS {dl['peak_rss_mib']} MiB" if dl["peak_rss_mib"] else ""
        print(f"  {name:<10} SSE p50 {sse['p50_us']} us p99 {sse['p99_us']} us ({sse['events']} events); "
              f"1 GiB at {dl['mib_per_s']} MiB/s{rss}")
    s = report["startup"]
    print(f"start-up to first proxied request ({len(s['plugins'])} built-ins): "
          f"cold cache {s['cold_ms']} ms, warm cache {s['warm_ms']} ms")


if __name__ == "__main__":
    main()
