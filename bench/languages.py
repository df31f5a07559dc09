#!/usr/bin/env python3
"""Plugin languages compared: the same filter in Rust, Python, JavaScript and C.

    python3 bench/languages.py [--wicket PATH] [--requests N] [--rounds R]

Each language's filter is the one `wicket plugin new NAME --lang LANG` writes (on-request sets
one context key, on-response one header: as near a no-op as a filter that does anything gets),
built with its own toolchain (cargo; componentize-py; componentize-js; clang + wit-bindgen +
wasm-tools), so what differs is the language's runtime, not the work. Per language:

* size: bytes of the component;
* compile: `wicket compile` into an empty cache (what a gateway's first start pays for an
  external plugin not compiled before), median of --rounds;
* fresh / pooled: added latency of a request through the filter with `isolation = "request"`
  (a new instance per request) and `"pooled"`, over the same route without it: median of
  sequential keep-alive requests (--requests per arm per round, bounded in time), arms
  interleaved in each round, median over the rounds.

Tools come from PATH, or from the target directory as ./test.sh installs them
(<target>/python-venv, js-tools, c-tools). Uses the `wicket` binary given, else
<target>/release/wicket, else <target>/debug/wicket (say which in the results: the debug build's
dependencies, wasmtime included, are optimized, but wicket's own code is not). Loopback only;
every load is bounded in count and time. Writes a table to stdout and
bench/results/languages.json.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
LANGS = ["rust", "python", "js", "c"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def tools_env():
    env = dict(os.environ)
    extra = [TARGET / "python-venv/bin", TARGET / "js-tools/node_modules/.bin", TARGET / "c-tools/bin"]
    env["PATH"] = os.pathsep.join([str(p) for p in extra if p.is_dir()] + [env.get("PATH", "")])
    env.pop("RUSTFLAGS", None)
    # The scaffolds' target directory of the end-to-end tests: its dependencies are built already.
    env["CARGO_TARGET_DIR"] = str(TARGET / "debug" / "test-plugins" / "scaffolds")
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(wicket, lang, work, env):
    name = f"bench-{lang}"
    project = work / name
    subprocess.run([wicket, "plugin", "new", name, "--lang", lang, "--dir", project], check=True,
                   stdout=subprocess.DEVNULL)
    started = time.monotonic()
    subprocess.run(["bash", project / "build.sh"], check=True, env=env, stdout=subprocess.DEVNULL)
    log(f"built {lang} in {time.monotonic() - started:.1f} s")
    return project / f"{name}.wasm"


def compile_ms(wicket, wasm):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, WICKET_CACHE_DIR=cache)
        out = subprocess.run([wicket, "compile", wasm], check=True, env=env, capture_output=True, text=True)
        return int(re.search(r"\((\d+) ms\)", out.stdout).group(1))


def start_gateway(wicket, plugins, work):
    port = free_port()
    lines = [f'[server]\nlisten = "127.0.0.1:{port}"\naccess_log = false\n',
             '[plugins.answer]\nbuiltin = "mock"\n']
    routes = ['[[routes]]\npath = "/base"\nintegration = "answer"\n']
    for lang, wasm in plugins.items():
        for isolation in ["request", "pooled"]:
            plugin = f"{lang}-{isolation}"
            lines.append(f'[plugins.{plugin}]\nwasm = "{wasm}"\nisolation = "{isolation}"\n'
                         f'memory_mb = 256\ncpu_ms = 1000\n')
            routes.append(f'[[routes]]\npath = "/{plugin}"\nplugins = ["{plugin}"]\nintegration = "answer"\n')
    config = work / "gateway.toml"
    config.write_text("\n".join(lines + routes))
    cache = work / "cache"
    cache.mkdir(exist_ok=True)
    env = dict(os.environ, WICKET_CACHE_DIR=str(cache), RUST_LOG="warn")
    proc = subprocess.Popen([wicket, "run", "--config", config], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("wicket exited at start")
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("wicket did not start within 300 s")


def latencies(port, path, count, budget_s):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    deadline = time.monotonic() + budget_s
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        t = time.perf_counter_ns()
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"{path}: status {resp.status}")
        out.append((time.perf_counter_ns() - t) / 1000)
    conn.close()
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wicket")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    wicket = args.wicket or next(
        (str(p) for p in [TARGET / "release/wicket", TARGET / "debug/wicket"] if p.is_file()), None)
    if not wicket:
        raise SystemExit("no wicket binary: cargo build -p wicket (or --wicket PATH)")
    log(f"wicket: {wicket}")
    env = tools_env()
    work = Path(tempfile.mkdtemp(prefix="wicket-languages-"))
    try:
        plugins = {lang: build(wicket, lang, work, env) for lang in LANGS}
        results = {}
        for lang, wasm in plugins.items():
            times = [compile_ms(wicket, wasm) for _ in range(max(1, min(args.rounds, 3)))]
            results[lang] = {"size_bytes": wasm.stat().st_size, "compile_ms": statistics.median(times)}
            log(f"{lang}: {results[lang]}")
        proc, port = start_gateway(wicket, plugins, work)
        try:
            arms = ["/base"] + [f"/{lang}-{i}" for lang in LANGS for i in ["request", "pooled"]]
            for arm in arms:  # warm: pools filled, caches hot
                latencies(port, arm, 200, 30)
            per_round = {arm: [] for arm in arms}
            for r in range(args.rounds):
                for arm in arms:
                    per_round[arm].append(latencies(port, arm, args.requests, 60))
                log(f"round {r + 1}: " + ", ".join(f"{a} {per_round[a][-1]:.0f}" for a in arms))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        base = statistics.median(per_round["/base"])
        for lang in LANGS:
            for key, isolation in [("fresh_us", "request"), ("pooled_us", "pooled")]:
                rounds = per_round[f"/{lang}-{isolation}"]
                results[lang][key] = round(statistics.median(rounds) - base, 1)
                results[lang][key + "_spread"] = round(max(rounds) - min(rounds), 1)
        results["_base_median_us"] = round(base, 1)
        results["_wicket"] = wicket
        results["_load"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'language':<10} {'size':>10} {'compile':>10} {'fresh':>10} {'pooled':>10}")
    for lang in LANGS:
        r = results[lang]
        print(f"{lang:<10} {r['size_bytes'] / 1e6:>8.2f}MB {r['compile_ms']:>8.0f}ms "
              f"{r['fresh_us']:>8.1f}us {r['pooled_us']:>8.1f}us")
    print(f"(added latency over a route without the filter, median {results['_base_median_us']} us; "
          f"load average {results['_load']})")
    out = ROOT / "bench/results/languages.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
