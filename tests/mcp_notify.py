"""Progress, logging and cancellation of a long tool call, with the official
Python SDK (PyPI `mcp`) against tomo. Run by tests/it/mcp_notify.rs.

Usage: mcp_notify.py SCENARIO TRANSPORT
  SCENARIO   apply    plan, then apply the plan with a progress token and
                      logs at `info`; print what arrived
             cancel   the same, cancelled once CANCEL_AT actions are done;
                      then wait for the apply lock (a second apply with a
                      stale fingerprint) so the run has ended
             bench    apply with a progress token and logs at `info`
                      (BENCH_TOKEN=1) or neither (BENCH_TOKEN=0, the session's
                      default level: no message for a clean apply); print the
                      call's wall time
  TRANSPORT  stdio | http-legacy (2025-11-25 sessions) | http-auto (2026-07-28)
Environment as tests/mcp_client.py (TOMO_BIN, TOMO_DIR, TOMO_URL, TOMO_TOKEN).
Prints `key: value` lines; exits non-zero on a failure.
"""

import asyncio
import os
import sys
import time

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)


def client(transport, logs, level):
    async def on_log(params):
        logs.append(params)

    if transport == "stdio":
        params = StdioServerParameters(
            command=os.environ["TOMO_BIN"],
            args=["serve", "--stdio", "--role", "operator"],
            cwd=os.environ["TOMO_DIR"],
            env={"PATH": os.environ.get("PATH", ""), "DATA_DIRECTORY": "data", "TOMO_LOG": "warn"},
        )
        return Client(params, mode="legacy", logging_callback=on_log)
    headers = {"Authorization": f"Bearer {os.environ['TOMO_TOKEN']}"}
    http = streamable_http_client(os.environ["TOMO_URL"], http_client=httpx2.AsyncClient(headers=headers, timeout=120))
    mode = "legacy" if transport == "http-legacy" else "auto"
    return Client(http, mode=mode, logging_callback=on_log, log_level=level if mode == "auto" else None)


async def fingerprint(c):
    r = await c.call_tool("plan", {})
    if r.is_error:
        fail(f"plan: {r.content}")
    return structured(r)["fingerprint"]


async def apply(transport, level="info"):
    logs, progress = [], []
    async with client(transport, logs, level) as c:
        if transport != "http-auto":
            await c.set_logging_level(level)
        fp = await fingerprint(c)

        async def on_progress(p, total, message):
            progress.append((p, total, message))

        t0 = time.perf_counter()
        r = await c.call_tool("apply", {"fingerprint": fp}, progress_callback=on_progress)
        elapsed = time.perf_counter() - t0
        if r.is_error or not structured(r)["succeeded"]:
            fail(f"apply: {r.content}")
        report(progress, logs)
        print(f"actions: {len(structured(r)['actions'])}")
        print(f"elapsed_s: {elapsed:.3f}")


def report(progress, logs):
    values = [p for p, _, _ in progress]
    print(f"progress_count: {len(progress)}")
    print(f"progress_increasing: {all(b > a for a, b in zip(values, values[1:]))}")
    print(f"progress_last: {values[-1] if values else None} of {progress[-1][1] if progress else None}")
    for p, total, message in progress[:3]:
        print(f"progress: {p} {total} {message}")
    print(f"log_count: {len(logs)}")
    print(f"log_loggers: {sorted({m.logger for m in logs})}")
    print(f"log_levels: {sorted({m.level for m in logs})}")
    for m in logs[:2]:
        print(f"log: {m.level} {m.data}")


async def cancel(transport):
    logs, progress = [], []
    at = int(os.environ.get("CANCEL_AT", "3"))
    async with client(transport, logs, "info") as c:
        if transport != "http-auto":
            await c.set_logging_level("info")
        fp = await fingerprint(c)
        reached = anyio.Event()

        async def on_progress(p, total, message):
            progress.append((p, total, message))
            if p >= at:
                reached.set()

        async with anyio.create_task_group() as tg:

            async def call():
                await c.call_tool("apply", {"fingerprint": fp}, progress_callback=on_progress)
                print("cancel: the call ended before it was cancelled")

            tg.start_soon(call)
            with anyio.fail_after(120):
                await reached.wait()
            tg.cancel_scope.cancel()
        print(f"cancelled_at: {progress[-1][0]} of {progress[-1][1]}")
        # The apply lock is held until the cancelled run ends: a second
        # apply waits for it, then refuses its stale fingerprint.
        r = await c.call_tool("apply", {"fingerprint": "0" * 16})
        text = r.content[0].text if r.content else ""
        if not r.is_error or "plan changed" not in text:
            fail(f"second apply: {r.content}")
        print("after_cancel: the run has ended")
        # The server lives on.
        r = await c.call_tool("validate", {})
        print(f"alive: {not r.is_error}")
        said = [m.data["message"] for m in logs if "apply cancelled" in str(m.data)]
        print(f"cancel_logged: {said[0] if said else None}")
        report(progress, logs)


async def bench(transport):
    progress = []
    token = os.environ.get("BENCH_TOKEN", "1") == "1"
    logs = []
    async with client(transport, logs, "info" if token else None) as c:
        if token and transport != "http-auto":
            await c.set_logging_level("info")
        fp = await fingerprint(c)

        async def on_progress(p, total, message):
            progress.append(p)

        t0 = time.perf_counter()
        r = await c.call_tool("apply", {"fingerprint": fp}, progress_callback=on_progress if token else None)
        elapsed = time.perf_counter() - t0
        if r.is_error or not structured(r)["succeeded"]:
            fail(f"apply: {r.content}")
        print(f"elapsed_s: {elapsed:.3f}")
        print(f"progress_count: {len(progress)}")
        print(f"log_count: {len(logs)}")


if __name__ == "__main__":
    scenario, transport = sys.argv[1], sys.argv[2]
    run = {"apply": apply, "cancel": cancel, "bench": bench}[scenario]
    asyncio.run(run(transport))
