#!/usr/bin/env python3
"""Benchmark: tomo against docker-compose on the same workload, in one run.

For N services (busybox httpd, init on, a label, an env var, a named volume,
half with a published port) it measures, for both tools: cold apply, no-op
plan (tomo) / no-op `up -d` (compose), no-op apply and one-change apply, plus
one `docker ps --filter label=...` call as the floor. Prints a Markdown table
with medians and the ratios the targets are stated in.

Usage: tests/bench.py [N ...]            (default: 10 50)
       tests/bench.py --ssh                 (remote servers: 10 services over SSH)
       tests/bench.py --mcp                 (MCP latency from the Python SDK)
       tests/bench.py --watch [SECONDS]     (watch: write-to-Docker latency, idle CPU/RSS; default 300 s)
       tests/bench.py --noop-vs BEFORE [N]  (no-op plan of N services (50): this build against the
                                             binary BEFORE, e.g. one built before image digests were planned)

With --ssh it builds test servers as network namespaces, each with its own
sshd and dockerd (as the integration tests do), and measures a no-op plan of
10 services on one SSH server and spread over 5, next to the local-socket
figure, tomo's SSH handshake, and pyinfra (PyPI, in target/bench-venv) over SSH.
Needs: a running Docker Engine, docker-compose (Debian's, 1.29), busybox-static,
and `cargo build --release` (the script builds it).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
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


class Host:
    """A test server: a network namespace with its own sshd and dockerd."""

    def __init__(self, i):
        self.ns, octet = f"tb{os.getpid() % 10000}x{i}", 60 + i
        self.addr = f"10.234.{octet}.2"
        self.dir = tempfile.mkdtemp(prefix="tomo-bench-")
        d, ns = self.dir, self.ns
        for cmd in [
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", f"{ns}h", "type", "veth", "peer", "name", f"{ns}n"],
            ["ip", "link", "set", f"{ns}n", "netns", ns],
            ["ip", "addr", "add", f"10.234.{octet}.1/24", "dev", f"{ns}h"],
            ["ip", "link", "set", f"{ns}h", "up"],
            ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.addr}/24", "dev", f"{ns}n"],
            ["ip", "netns", "exec", ns, "ip", "link", "set", f"{ns}n", "up"],
            ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/hostkey"],
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/userkey"],
        ]:
            sh(cmd)
        sh(["cp", f"{d}/userkey.pub", f"{d}/authorized_keys"])
        open(f"{d}/sshd_config", "w").write(
            f"ListenAddress {self.addr}\nHostKey {d}/hostkey\nAuthorizedKeysFile {d}/authorized_keys\n"
            f"PidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin yes\nAllowStreamLocalForwarding yes\n"
        )
        os.makedirs("/run/sshd", exist_ok=True)
        sh(["nsenter", f"--net=/var/run/netns/{ns}", "/usr/sbin/sshd", "-f", f"{d}/sshd_config"])
        self.socket = f"{d}/docker.sock"
        self.dockerd = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{ns}", "dockerd", "--data-root", f"{d}/data", "--exec-root", f"{d}/exec",
             "--pidfile", f"{d}/docker.pid", "-H", f"unix://{self.socket}", "--bip", f"172.28.{octet}.1/24"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(120):
            if sh(["docker", "-H", f"unix://{self.socket}", "version"], check=False).returncode == 0:
                break
            time.sleep(0.25)
        subprocess.run(f"docker save {IMAGE} | docker -H unix://{self.socket} load -q", shell=True, check=True,
                       stdout=subprocess.DEVNULL)
        self.fingerprint = sh(["ssh-keygen", "-lf", f"{d}/hostkey.pub"]).stdout.split()[1]

    def server_yaml(self, name):
        return (f"kind: Server\nname: {name}\nhost: {self.addr}\nuser: root\nauth: {{key_file: {self.dir}/userkey}}\n"
                f"host_key: \"{self.fingerprint}\"\ndocker: {{socket: {self.socket}}}\n")

    def close(self):
        sh(["sh", "-c", f"kill $(cat {self.dir}/sshd.pid)"], check=False)
        self.dockerd.terminate()
        self.dockerd.wait(timeout=30)
        sh(["ip", "netns", "del", self.ns], check=False)
        sh(["ip", "link", "del", f"{self.ns}h"], check=False)
        sh(["rm", "-rf", self.dir], check=False)


def ssh_services(hosts, per_host):
    """Manifest text: `per_host` services on each of `hosts`, each its own app."""
    docs = [h.server_yaml(f"h{i}") for i, h in enumerate(hosts)]
    for i in range(len(hosts)):
        for j in range(per_host):
            docs.append(f"kind: App\nname: r{i}x{j}\nserver: h{i}\nimage: {IMAGE}\ninit: true\n"
                        f"command: [\"sh\", \"-c\", \"{CMD}\"]\nlabels: {{bench: \"yes\"}}\nenv: {{VALUE: x}}\n"
                        f"volumes: [\"v:/data\"]\n" + (f"ports: [\"127.0.0.1:{BASE_PORT + j}:80\"]\n" if j % 2 == 0 else ""))
    return "---\n".join(docs)


def tomo_noop_plan(manifest):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, DATA_DIRECTORY=f"{d}/data", TOMO_LOG="warn")
        os.makedirs(f"{d}/state")
        open(f"{d}/state/fleet.yaml", "w").write(manifest)
        sh([TOMO, "apply", "--auto-approve"], d, env)
        plan = median_of(15, [TOMO, "plan"], d, env)
        handshakes = []
        for _ in range(7):
            log = sh([TOMO, "plan"], d, dict(env, TOMO_LOG="tomo=debug")).stderr
            for line in log.splitlines():
                if "ssh connected" in line:
                    f = dict(p.split("=") for p in line.split() if "=" in p)
                    handshakes.append((int(f["handshake_ms"]) + int(f["login_ms"])) / 1000)
        open(f"{d}/state/fleet.yaml", "w").write(manifest.replace("\nserver: h", "\nstate: absent\nserver: h"))
        sh([TOMO, "apply", "--auto-approve"], d, env)
        return plan, statistics.median(handshakes) if handshakes else 0.0


def pyinfra_noop(host):
    venv = os.path.join(ROOT, "target", "bench-venv")
    if not os.path.exists(f"{venv}/bin/pyinfra"):
        sh([sys.executable, "-m", "venv", venv])
        sh([f"{venv}/bin/pip", "install", "-q", "pyinfra"])
    with tempfile.TemporaryDirectory() as d:
        open(f"{d}/inventory.py", "w").write(
            f"hosts = [(\"{host.addr}\", {{\"ssh_user\": \"root\", \"ssh_key\": \"{host.dir}/userkey\", "
            f"\"ssh_known_hosts_file\": \"/dev/null\", \"ssh_strict_host_key_checking\": \"no\"}})]\n")
        open(f"{d}/deploy.py", "w").write(
            "from pyinfra.operations import docker\n"
            "for i in range(10):\n"
            "    docker.container(name=f'p{i}', container=f'p{i}', image='" + IMAGE + "',\n"
            "        command=\"sh -c '" + CMD + "'\", labels=['bench=yes'], env_vars=['VALUE=x'],\n"
            "        volumes=[f'pv{i}:/data'], ports=[f'127.0.0.1:{" + str(BASE_PORT + 100) + " + i}:80'] if i % 2 == 0 else None,\n"
            "        _env={'DOCKER_HOST': 'unix://" + host.socket + "'})\n")
        run = [f"{venv}/bin/pyinfra", "-y", "inventory.py", "deploy.py"]
        sh(run, d)
        return median_of(3, run, d)


def bench_ssh():
    hosts = [Host(i) for i in range(5)]
    try:
        local = bench_local_noop()
        one, handshake = tomo_noop_plan(ssh_services(hosts[:1], 10))
        spread, _ = tomo_noop_plan(ssh_services(hosts, 2))
        py = pyinfra_noop(hosts[0])
    finally:
        for h in hosts:
            h.close()
    print("| measure | time | target |")
    print("|---|---|---|")
    print(f"| no-op plan, 10 services, local socket | {local * 1000:.1f} ms | |")
    print(f"| tomo's SSH handshake and login (median) | {handshake * 1000:.1f} ms | |")
    bound = 1.5 * (local + handshake)
    print(f"| no-op plan, 10 services on 1 SSH server | {one * 1000:.1f} ms | ≤ 1.5 × (local + handshake) = {bound * 1000:.1f} ms |")
    print(f"| no-op plan, 10 services over 5 SSH servers | {spread * 1000:.1f} ms | ≤ 1.3 × 1 server = {1.3 * one * 1000:.1f} ms |")
    print(f"| pyinfra no-op over SSH, same 10 services | {py * 1000:.0f} ms | tomo ≥ 10× faster: {py / one:.1f}× |")


def bench_local_noop():
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, DATA_DIRECTORY=f"{d}/data", TOMO_LOG="warn")
        os.makedirs(f"{d}/state")
        path = f"{d}/state/bench.yaml"
        open(path, "w").write(tomo_manifest(10, "0").replace("bench10", "sshref"))
        sh([TOMO, "apply", "--auto-approve"], d, env)
        t = median_of(15, [TOMO, "plan"], d, env)
        open(path, "w").write(tomo_manifest(10, "0").replace("bench10", "sshref").replace("server: local", "server: local\nstate: absent"))
        sh([TOMO, "apply", "--auto-approve"], d, env)
        sh(["docker", "volume", "rm"] + [f"sshref_v{i}" for i in range(10)], check=False)
        return t


def bench_mcp(calls=300):
    """Median latency of tools/list and of `app_list` (10 apps on the local
    server) as the official Python MCP SDK sees it, over stdio and HTTP, with a
    warm engine (a few calls first)."""
    py = os.path.join(ROOT, "target", "test-venv", "bin", "python")
    if not os.path.exists(py):
        sys.exit("needs the Python MCP SDK in target/test-venv: run tests/run.sh once")
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "state", "apps"))
        for i in range(10):
            with open(os.path.join(d, "state", "apps", f"app{i}.yaml"), "w") as f:
                f.write(f"kind: App\nname: bench-app{i}\nserver: local\nimage: {IMAGE}\nenv: {{N: \"{i}\"}}\n")
        env = dict(os.environ, DATA_DIRECTORY="data", TOMO_LOG="info",
                   JWT_SECRET_KEY="bench-key-0123456789abcdef0123456789")
        subprocess.run([TOMO, "user", "add", "bench", "--role", "operator"], cwd=d, env=env,
                       input="bench-password\n", text=True, check=True, capture_output=True)
        token = sh([TOMO, "token", "create", "--user", "bench"], cwd=d, env=env).stdout.strip()
        server = subprocess.Popen([TOMO, "serve", "--http", "127.0.0.1:0"], cwd=d, env=env,
                                  stderr=subprocess.PIPE, text=True)
        addr = None
        for line in server.stderr:
            if '"address"' in line:
                addr = line.split('"address":"')[1].split('"')[0]
                break
        # Keep draining its log, or the server blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        try:
            client_env = dict(env, TOMO_BIN=TOMO, TOMO_DIR=d, TOMO_URL=f"http://{addr}/mcp", TOMO_TOKEN=token)
            r = subprocess.run([py, os.path.join(ROOT, "tests", "mcp_client.py"), "--bench", str(calls)],
                               env=client_env, text=True, capture_output=True)
            if r.returncode != 0:
                sys.exit(f"the MCP client failed:\n{r.stdout}\n{r.stderr}")
            print(r.stdout)
        finally:
            server.terminate()
            server.wait()


def iso_ts(line):
    """Unix seconds of a JSON log line's timestamp."""
    import datetime
    ts = line.split('"timestamp":"')[1].split('"')[0]
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def bench_watch(idle_seconds):
    """`tomo watch` over 50 declared services: time from a manifest write to
    the first Docker API call of the run it causes (and where the time goes),
    then CPU and peak RSS while idle."""
    n = 50
    ensure_image()
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "state"))
        path = os.path.join(d, "state", "bench.yaml")
        with open(path, "w") as f:
            f.write(tomo_manifest(n, "a"))
        env = dict(os.environ, DATA_DIRECTORY="data", TOMO_LOG="tomo=debug")
        sh([TOMO, "apply", "--auto-approve"], cwd=d, env=env)
        w = subprocess.Popen([TOMO, "watch"], cwd=d, env=env, stderr=subprocess.PIPE, text=True)
        lines = []
        cond = threading.Condition()

        def drain():
            for line in w.stderr:
                with cond:
                    lines.append(line)
                    cond.notify_all()

        threading.Thread(target=drain, daemon=True).start()

        def wait_for(pred, since):
            with cond:
                while True:
                    for i in range(since, len(lines)):
                        if pred(lines[i]):
                            return i
                    if not cond.wait(timeout=60):
                        sys.exit("the watch log stopped:\n" + "".join(lines[-20:]))

        seen = wait_for(lambda l: "run finished" in l, 0) + 1
        samples = []
        for k in range(10):
            t0 = time.time()
            with open(path, "a") as f:
                f.write(f"# edit {k}\n")
            ev = wait_for(lambda l: "file event" in l, seen)
            start = wait_for(lambda l: '"run started"' in l, ev)
            api = wait_for(lambda l: "docker: list" in l, start)
            done = wait_for(lambda l: "run finished" in l, api)
            seen = done + 1
            samples.append((iso_ts(lines[ev]) - t0, iso_ts(lines[start]) - iso_ts(lines[ev]),
                            iso_ts(lines[api]) - iso_ts(lines[start]), iso_ts(lines[api]) - t0))
        med = [statistics.median(c) * 1000 for c in zip(*samples)]
        print(f"write -> first Docker API call, median of 10: {med[3]:.1f} ms")
        print(f"  write -> file event (inotify): {med[0]:.1f} ms")
        print(f"  file event -> run start (debounce 500 ms + scheduling): {med[1]:.1f} ms")
        print(f"  run start -> first Docker call (read + validate manifests, lock, store): {med[2]:.1f} ms")
        clk = os.sysconf("SC_CLK_TCK")

        def cpu_and_rss():
            with open(f"/proc/{w.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{w.pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            return (int(fields[11]) + int(fields[12])) / clk, rss

        c0, rss = cpu_and_rss()
        t0 = time.time()
        peak = rss
        while time.time() - t0 < idle_seconds:
            time.sleep(5)
            _, rss = cpu_and_rss()
            peak = max(peak, rss)
        c1, _ = cpu_and_rss()
        secs = time.time() - t0
        print(f"idle {secs:.0f} s with {n} services: CPU {100 * (c1 - c0) / secs:.3f}% of one core, "
              f"peak RSS {peak / 1024:.1f} MiB")
        w.terminate()
        w.wait()
        sh(["docker", "rm", "-f", "-v"] + [f"bench{n}-s{i}" for i in range(n)], check=False)
        sh(["docker", "network", "rm", f"bench{n}"], check=False)
        sh(["docker", "volume", "rm"] + [f"bench{n}_v{i}" for i in range(n)], check=False)


def bench_noop_vs(before, n):
    """The no-op plan of n services, this build against `before`, timed in
    turns on one deployment. `before` deploys it (its store is copied
    aside first, so this build's newer migrations never reach the store
    `before` reads); both then plan the same containers, which also checks
    that this build hashes them as `before` did (no change planned)."""
    with tempfile.TemporaryDirectory() as d:
        old_env = dict(os.environ, DATA_DIRECTORY=f"{d}/data-before", TOMO_LOG="warn")
        new_env = dict(os.environ, DATA_DIRECTORY=f"{d}/data", TOMO_LOG="warn")
        os.makedirs(f"{d}/state")
        path = f"{d}/state/bench.yaml"
        # A name of its own: other benchmarks may run `bench{n}` meanwhile.
        manifest = tomo_manifest(n, "0").replace(f"bench{n}", f"noopvs{n}")
        open(path, "w").write(manifest)
        sh([before, "apply", "--auto-approve"], d, old_env)
        sh(["cp", "-a", f"{d}/data-before", f"{d}/data"])
        for binary, env in [(before, old_env), (TOMO, new_env)]:
            r = sh([binary, "plan", "--detailed-exitcode"], d, env, check=False)
            if r.returncode != 0:
                sys.exit(f"{binary}: the deployment is not a no-op:\n{r.stdout}\n{r.stderr}")
        times = {before: [], TOMO: []}
        for _ in range(15):
            for binary, env in [(before, old_env), (TOMO, new_env)]:
                times[binary].append(timed([binary, "plan"], d, env))
        old, new = statistics.median(times[before]), statistics.median(times[TOMO])
        print("| measure | before | after | ratio | target |")
        print("|---|---|---|---|---|")
        print(f"| no-op plan, {n} services | {old * 1000:.1f} ms | {new * 1000:.1f} ms | {new / old:.2f} | ≤ 1.2× |")
        open(path, "w").write(manifest.replace("server: local", "server: local\nstate: absent"))
        sh([TOMO, "apply", "--auto-approve"], d, new_env, check=False)
        sh(["docker", "volume", "rm"] + [f"noopvs{n}_v{i}" for i in range(n)], check=False)


def main():
    if "--noop-vs" in sys.argv:
        rest = sys.argv[sys.argv.index("--noop-vs") + 1:]
        if not rest:
            sys.exit("--noop-vs BEFORE [N]: the binary to compare with")
        sh(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT)
        ensure_image()
        bench_noop_vs(os.path.abspath(rest[0]), int(rest[1]) if len(rest) > 1 else 50)
        return
    if "--watch" in sys.argv:
        sh(["cargo", "build", "--release", "-q"], cwd=ROOT)
        rest = [a for a in sys.argv[1:] if a != "--watch"]
        bench_watch(int(rest[0]) if rest else 300)
        return
    if "--mcp" in sys.argv:
        sh(["cargo", "build", "--release", "-q"], cwd=ROOT)
        bench_mcp()
        return
    if "--ssh" in sys.argv:
        sh(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT)
        ensure_image()
        bench_ssh()
        return
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
