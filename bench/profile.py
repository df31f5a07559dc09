#!/usr/bin/env python3
"""Instructions per request of one bench arm, counted by callgrind (repeatable whatever else
the machine is doing, unlike seconds), with the functions that cost the most.

    python3 bench/profile.py wicket-0            # route -> http, no filter
    python3 bench/profile.py wicket-pooled-1     # one pooled no-op filter
    python3 bench/profile.py wicket-fresh-1      # one fresh (per-request) no-op filter
    python3 bench/profile.py wicket-chain        # api-key -> quota -> headers -> http
    python3 bench/profile.py wicket-cache-hit
    python3 bench/profile.py hyper-floor

Uses the release binaries `bench/run.py` builds (run it once, or `--quick`, first). Warms the
proxy up, zeroes the counters, sends N requests (8 keep-alive connections, bounded), dumps,
and divides. Prints the total per request and the top functions by inclusive cost.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arm")
    ap.add_argument("-n", type=int, default=2000, help="requests counted (default 2000)")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="wicket-profile-"))
    noop = run.PLUGIN_TARGET / "wasm32-wasip2" / "release" / "noop.wasm"
    up_port, port = run.free_port(), run.free_port()
    upstream = run.Proc("upstream", [run.RELEASE / "bench-upstream", f"127.0.0.1:{up_port}"], run.LOAD_CORE)
    procs = [upstream]
    try:
        run.wait_http(f"http://127.0.0.1:{up_port}/")
        if args.arm == "hyper-floor":
            cmd = [run.RELEASE / "hyper-floor", f"127.0.0.1:{port}", f"127.0.0.1:{up_port}"]
        else:
            if args.arm == "wicket-chain":
                text = run.chain_config(port, up_port)
            elif args.arm == "wicket-cache-hit":
                text = run.cache_config(port, up_port)
            else:
                m = re.fullmatch(r"wicket-(?:(pooled|fresh)-(\d+)|0)", args.arm)
                if not m:
                    sys.exit(f"unknown arm {args.arm}")
                n = int(m.group(2) or 0)
                isolation = "request" if m.group(1) == "fresh" else "pooled"
                text = run.wicket_config(port, up_port, n, isolation, noop)
            # valgrind cannot reserve the address space of the default pool (1000 instances,
            # each with 4 GiB of reserved linear memory): a small pool fits its limit.
            cfg = workdir / "arm.toml"
            cfg.write_text(text + "\n[runtime]\nmax_instances = 6\n")
            cmd = [run.RELEASE / "wicket", "run", "--config", cfg]
        out = workdir / "callgrind.out"
        grind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=yes"]
        proxy = run.Proc("proxy", grind + cmd, run.PROXY_CORE,
                         env={"WICKET_CACHE_DIR": str(workdir / "cache"), "RUST_LOG": "warn", "PATH": "/usr/bin:/bin"})
        procs.append(proxy)
        url = f"http://127.0.0.1:{port}/x"
        run.wait_http(url, timeout=120)  # loadgen and wait_http send the chain's API key
        load = lambda n: subprocess.run(  # noqa: E731
            [run.RELEASE / "loadgen", url, str(max(n // 10, 1)), "10", "8"],
            check=True, capture_output=True, text=True, timeout=120)
        load(200)  # warm: pools grow, connections open
        time.sleep(0.5)
        subprocess.run(["callgrind_control", "-z", str(proxy.pid)], check=True, capture_output=True)
        load(args.n)
        subprocess.run(["callgrind_control", "-d", str(proxy.pid)], check=True, capture_output=True)
        time.sleep(1)
        dumps = sorted(workdir.glob("callgrind.out.*"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            sys.exit("no callgrind dump")
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", f"--threshold=99", str(dumps[-1])],
                                   check=True, capture_output=True, text=True).stdout
        total = None
        for line in annotated.splitlines():
            m = re.match(r"\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", line)
            if m:
                total = int(m.group(1).replace(",", ""))
        print(f"{args.arm}: {total / args.n:,.0f} instructions per request ({args.n} requests); "
              f"dump: {dumps[-1]}")
        shown = 0
        for line in annotated.splitlines():
            m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)", line)
            if m and "PROGRAM TOTALS" not in line:
                per = int(m.group(1).replace(",", "")) / args.n
                print(f"{per:>10,.0f}  {m.group(2):>5}%  {m.group(3)[:150]}")
                shown += 1
                if shown >= args.top:
                    break
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
