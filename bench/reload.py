#!/usr/bin/env python3
"""Reload latency and memory: how long from SIGHUP to the new config serving, with 3 and with
15 plugins, and the gateway's RSS over many reloads.

    python3 bench/reload.py [--rounds 20] [--reloads 200]

Uses the release `wicket` and `bench-upstream` from $CARGO_TARGET_DIR (build them first:
`cargo build --release -p wicket -p wicket-bench`). For each chain length it starts Wicket with
a config whose filters stamp a response header, then repeatedly rewrites the config with a new
stamp, sends SIGHUP, and polls (one keep-alive connection, back to back) until an answer carries
the new stamp: that wall time is the latency, compile cache warm (the usual case: the plugins
are the same, their config changed). All on 127.0.0.1; every loop is bounded.
"""

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port, up_port, plugins, stamp):
    filters = plugins - 1
    out = [f'[server]\nlisten = "127.0.0.1:{port}"\naccess_log = false\n']
    for i in range(filters):
        out.append(
            f'[plugins.f{i}]\nbuiltin = "headers"\n'
            f'config.response.set = {{ "x-stamp-{i}" = "{stamp}" }}\n'
        )
    out.append(f'[plugins.backend]\nbuiltin = "http"\nconfig = {{ url = "http://127.0.0.1:{up_port}/" }}\n')
    chain = ", ".join(f'"f{i}"' for i in range(filters))
    out.append(f'[[routes]]\npath = "/"\nplugins = [{chain}]\nintegration = "backend"\n')
    return "\n".join(out)


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stamp_of(conn, last):
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    return resp.getheader(f"x-stamp-{last}")


def measure(plugins, rounds, reloads, up_port, cache):
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "gateway.toml"
        path.write_text(config(port, up_port, plugins, "s0"))
        env = {**os.environ, "WICKET_CACHE_DIR": cache, "RUST_LOG": "warn"}
        gw = subprocess.Popen([RELEASE / "wicket", "run", "--config", path], env=env)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    stamp_of(conn, plugins - 2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            latencies = []
            rss = []
            total = max(rounds, reloads)
            for n in range(1, total + 1):
                stamp = f"s{n}"
                path.write_text(config(port, up_port, plugins, stamp))
                t0 = time.monotonic()
                gw.send_signal(signal.SIGHUP)
                while stamp_of(conn, plugins - 2) != stamp:
                    if time.monotonic() - t0 > 30:
                        raise RuntimeError("reload did not take effect in 30 s")
                latencies.append(time.monotonic() - t0)
                if n in (1, reloads):
                    time.sleep(0.5)
                    rss.append((n, rss_kib(gw.pid)))
            return latencies[:rounds], rss
        finally:
            gw.terminate()
            gw.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--reloads", type=int, default=200)
    args = ap.parse_args()
    up_port = free_port()
    upstream = subprocess.Popen([RELEASE / "bench-upstream", f"127.0.0.1:{up_port}"])
    try:
        with tempfile.TemporaryDirectory() as cache:
            for plugins in (3, 15):
                lat, rss = measure(plugins, args.rounds, args.reloads, up_port, cache)
                ms = sorted(x * 1000 for x in lat)
                print(
                    f"{plugins:2d} plugins: SIGHUP -> new config serving: median {statistics.median(ms):.1f} ms, "
                    f"min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} reloads; "
                    + ", ".join(f"RSS after {n}: {kib / 1024:.1f} MiB" for n, kib in rss)
                )
    finally:
        upstream.terminate()


if __name__ == "__main__":
    main()
