"""A real third-party MCP client (the official Python SDK, PyPI `mcp`) against tomo.

Run by tests/it/mcp.rs (checks) and tests/bench.py-style timing (`--bench N`).
Environment:
  TOMO_BIN      the tomo binary          TOMO_DIR  the folder it runs in (state/, data/)
  TOMO_URL      http://HOST:PORT/mcp     TOMO_TOKEN a valid operator token
  TOMO_EXPIRED  an expired token         TOMO_REVOKED a revoked token
Prints one line per check and exits non-zero on the first failure.
"""

import asyncio
import os
import statistics
import sys
import time

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def ok(msg):
    print(f"ok: {msg}", flush=True)


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


def stdio_params(role):
    return StdioServerParameters(
        command=os.environ["TOMO_BIN"],
        args=["serve", "--stdio", "--role", role],
        cwd=os.environ["TOMO_DIR"],
        env={"PATH": os.environ.get("PATH", ""), "DATA_DIRECTORY": "data", "TOMO_LOG": "warn"},
    )


def http(token, mode):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = streamable_http_client(os.environ["TOMO_URL"], http_client=httpx2.AsyncClient(headers=headers))
    return Client(transport, mode=mode)


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)


async def check_session(client, label):
    ok(f"{label}: protocol {client.protocol_version}")
    tools = await client.list_tools(cache_mode="bypass")
    names = {t.name for t in tools.tools}
    if len(names) < 39 or "app_list" not in names or "apply" not in names:
        fail(f"{label}: tools/list gave {sorted(names)}")
    ok(f"{label}: tools/list has {len(names)} tools")
    r = await client.call_tool("app_list", {})
    if r.is_error:
        fail(f"{label}: app_list failed: {r.content}")
    apps = structured(r)["apps"]
    ok(f"{label}: app_list returned {len(apps)} app(s)")
    r = await client.call_tool("validate", {})
    if r.is_error or not structured(r)["valid"]:
        fail(f"{label}: validate: {r.content}")
    ok(f"{label}: validate says valid")
    r = await client.call_tool("app_get", {"name": "no-such-app"})
    if not r.is_error:
        fail(f"{label}: app_get of an unknown app did not fail")
    ok(f"{label}: unknown app is an isError result: {r.content[0].text[:80]}")
    r = await client.call_tool("auth_whoami", {})
    ok(f"{label}: whoami {structured(r)['user']} ({structured(r)['role']})")
    res = await client.list_resources()
    if not res.resources:
        fail(f"{label}: no resources")
    ok(f"{label}: {len(res.resources)} manifest resource(s)")
    prompts = await client.list_prompts()
    ok(f"{label}: prompts {[p.name for p in prompts.prompts]}")


async def expect_401(token, label):
    """The SDK's session fails, and the HTTP answer under it is a 401 with a challenge."""
    try:
        async with http(token, "legacy") as c:
            await c.list_tools()
    except BaseException:  # noqa: BLE001 - the SDK reports the refusal as an exception group
        pass
    else:
        fail(f"{label}: the SDK session worked")
    headers = {"Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    async with httpx2.AsyncClient() as h:
        r = await h.post(os.environ["TOMO_URL"], json=init, headers=headers)
    if r.status_code != 401 or not r.headers.get("www-authenticate", "").startswith("Bearer"):
        fail(f"{label}: expected 401 with WWW-Authenticate, got {r.status_code} {dict(r.headers)}")
    ok(f"{label}: refused with 401 ({r.json().get('error')})")


async def checks():
    async with Client(stdio_params("operator")) as c:
        await check_session(c, "stdio")
    token = os.environ["TOMO_TOKEN"]
    async with http(token, "legacy") as c:
        await check_session(c, "http 2025-11-25 (sessions)")
    async with http(token, "auto") as c:
        await check_session(c, "http auto-negotiated")
        if c.protocol_version != "2026-07-28":
            fail(f"auto mode negotiated {c.protocol_version}, not the stateless 2026-07-28")
    await expect_401(None, "http without a token")
    await expect_401(os.environ["TOMO_EXPIRED"], "http with an expired token")
    await expect_401(os.environ["TOMO_REVOKED"], "http with a revoked token")
    await expect_401("not-a-jwt", "http with a malformed token")


async def timed(client, n, tool):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        if tool is None:
            await client.list_tools(cache_mode="bypass")
        else:
            r = await client.call_tool(tool, {})
            if r.is_error:
                fail(f"{tool}: {r.content}")
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def bench(n):
    rows = []
    async with Client(stdio_params("operator")) as c:
        await timed(c, 5, "app_list")
        rows.append(("stdio", await timed(c, n, None), await timed(c, n, "app_list")))
    for mode in ("legacy", "auto"):
        async with http(os.environ["TOMO_TOKEN"], mode) as c:
            await timed(c, 5, "app_list")
            rows.append((f"http ({mode})", await timed(c, n, None), await timed(c, n, "app_list")))
    print(f"{'transport':<16} {'tools/list ms':>14} {'app_list ms':>12}   (medians of {n})")
    for name, tl, al in rows:
        print(f"{name:<16} {tl:>14.2f} {al:>12.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--bench":
        asyncio.run(bench(int(sys.argv[2])))
    else:
        asyncio.run(checks())
        print("all checks passed")
