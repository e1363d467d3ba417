#!/usr/bin/env python3
"""Benchmark: tomo against docker-compose on the same workload, in one run.

For N services (busybox httpd, init on, a label, an env var, a named volume,
half with a published port) it measures, for both tools: cold apply, no-op
plan (tomo) / no-op `up -d` (compose), no-op apply and one-change apply, plus
one `docker ps --filter label=...` call as the floor. Prints a Markdown table
with medians and the ratios the targets are stated in.

Usage: tests/bench.py [N ...]            (default: 10 50)
Needs: a running Docker Engine, docker-compose (Debian's, 1.29), busybox-static,
and `cargo build --release` (the script builds it).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOMO = os.path.join(ROOT, "target", "release", "tomo")
IMAGE = "tomo-test/busybox:1"
BASE_PORT = 21000
COLD_RUNS = 3  # cold applies are single long runs: take the median of a few


def sh(cmd, cwd=None, env=None, check=True):
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


def timed(cmd, cwd=None, env=None, check=True):
    t = time.perf_counter()
    sh(cmd, cwd, env, check)
    return time.perf_counter() - t


def median_of(n, cmd, cwd=None, env=None):
    return statistics.median(timed(cmd, cwd, env) for _ in range(n))


def ensure_image():
    if sh(["docker", "image", "inspect", IMAGE], check=False).returncode == 0:
        return
    busybox = next(p for p in ["/bin/busybox", "/usr/bin/busybox"] if os.path.exists(p))
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(f"{d}/bin")
        sh(["cp", busybox, f"{d}/bin/busybox"])
        for a in ["sh", "httpd", "mkdir", "echo", "sleep", "wget"]:
            os.symlink("busybox", f"{d}/bin/{a}")
        subprocess.run(f"tar -C {d} -c . | docker import - {IMAGE}", shell=True, check=True, stdout=subprocess.DEVNULL)


CMD = "mkdir -p /w && echo hi > /w/index.html && exec httpd -f -p 80 -h /w"


def tomo_manifest(n, value):
    lines = ["kind: App", f"name: bench{n}", "server: local", "services:"]
    for i in range(n):
        lines += [
            f"  s{i}:",
            f"    image: {IMAGE}",
            "    init: true",
            f"    command: [\"sh\", \"-c\", \"{CMD}\"]",
            "    labels: {bench: \"yes\"}",
            f"    env: {{VALUE: \"{value if i == 0 else 'x'}\"}}",
            f"    volumes: [\"v{i}:/data\"]",
        ]
        if i % 2 == 0:
            lines.append(f"    ports: [\"127.0.0.1:{BASE_PORT + i}:80\"]")
    return "\n".join(lines) + "\n"


def compose_file(n, value):
    lines = ['version: "2.4"', "services:"]
    for i in range(n):
        lines += [
            f"  s{i}:",
            f"    image: {IMAGE}",
            "    init: true",
            f"    command: [\"sh\", \"-c\", \"{CMD}\"]",
            "    labels: {bench: \"yes\"}",
            f"    environment: {{VALUE: \"{value if i == 0 else 'x'}\"}}",
            f"    volumes: [\"v{i}:/data\"]",
        ]
        if i % 2 == 0:
            lines.append(f"    ports: [\"127.0.0.1:{BASE_PORT + i}:80\"]")
    lines.append("volumes:")
    lines += [f"  v{i}: {{}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def bench_tomo(n):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, DATA_DIRECTORY=f"{d}/data", TOMO_LOG="warn")
        os.makedirs(f"{d}/state")
        path = f"{d}/state/bench.yaml"
        open(path, "w").write(tomo_manifest(n, "0"))
        apply = [TOMO, "apply", "--auto-approve"]
        absent = tomo_manifest(n, "0").replace("server: local", "server: local\nstate: absent")
        colds = []
        for _ in range(COLD_RUNS):
            open(path, "w").write(tomo_manifest(n, "0"))
            colds.append(timed(apply, d, env))
            if len(colds) < COLD_RUNS:
                open(path, "w").write(absent)
                sh(apply, d, env)
                sh(["docker", "volume", "rm"] + [f"bench{n}_v{i}" for i in range(n)], check=False)
        res = {"cold": statistics.median(colds)}
        res["noop_plan"] = median_of(15, [TOMO, "plan"], d, env)
        res["noop_apply"] = median_of(7, apply, d, env)
        changes = []
        for k in range(1, 4):
            open(path, "w").write(tomo_manifest(n, str(k)))
            changes.append(timed(apply, d, env))
        res["one_change"] = statistics.median(changes)
        res["docker_ps"] = median_of(15, ["docker", "ps", "-a", "-q", "--filter", f"label=tomo.app=bench{n}"])
        # teardown: the app declared absent, then its volumes by name
        open(path, "w").write(absent)
        sh(apply, d, env)
        sh(["docker", "volume", "rm"] + [f"bench{n}_v{i}" for i in range(n)], check=False)
        return res


def bench_compose(n):
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/docker-compose.yml"
        project = ["docker-compose", "-p", f"cbench{n}", "-f", path]
        colds = []
        for _ in range(COLD_RUNS):
            open(path, "w").write(compose_file(n, "0"))
            colds.append(timed(project + ["up", "-d"]))
            if len(colds) < COLD_RUNS:
                sh(project + ["down", "-v"])
        res = {"cold": statistics.median(colds)}
        res["noop_up"] = median_of(5, project + ["up", "-d"])
        changes = []
        for k in range(1, 4):
            open(path, "w").write(compose_file(n, str(k)))
            changes.append(timed(project + ["up", "-d"]))
        res["one_change"] = statistics.median(changes)
        sh(project + ["down", "-v"])
        return res


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [10, 50]
    sh(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT)
    ensure_image()
    print("| N | measure | tomo | docker-compose | ratio (as the target states it) | target |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        t = bench_tomo(n)
        c = bench_compose(n)
        rows = [
            ("cold apply", t["cold"], c["cold"], t["cold"] / c["cold"], "tomo ≤ 0.8× compose (N=50)"),
            ("no-op plan vs compose no-op up -d", t["noop_plan"], c["noop_up"], c["noop_up"] / t["noop_plan"], "≥ 15× faster"),
            ("no-op plan vs one `docker ps --filter label`", t["noop_plan"], None, t["noop_plan"] / t["docker_ps"], f"≤ 2× (docker ps {t['docker_ps'] * 1000:.1f} ms)"),
            ("no-op apply", t["noop_apply"], c["noop_up"], c["noop_up"] / t["noop_apply"], "faster"),
            ("one-change apply", t["one_change"], c["one_change"], c["one_change"] / t["one_change"], "≥ 2.5× faster"),
        ]
        for name, tv, cv, ratio, target in rows:
            cs = f"{cv * 1000:.0f} ms" if cv is not None else "—"
            print(f"| {n} | {name} | {tv * 1000:.1f} ms | {cs} | {ratio:.2f} | {target} |", flush=True)


if __name__ == "__main__":
    main()
