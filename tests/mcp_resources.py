"""Completions, resources and subscriptions of tomo's MCP server, checked with
the official Python SDK (PyPI `mcp`) over stdio and over HTTP in both protocol
generations (2025-11-25 sessions, the stateless 2026-07-28).

Run by tests/it/mcp_resources.rs. Environment:
  TOMO_BIN, TOMO_DIR   the tomo binary and the folder it runs in (state/, data/)
  TOMO_URL, TOMO_TOKEN http://HOST:PORT/mcp and an operator token
  TOMO_PREFIX          the prefix of the test's app names (`P-web`, `P-webmail`, `P-db`)
The app `P-web` is deployed and running. Prints one line per check and exits
non-zero on the first failure.
"""

import asyncio
import os
import subprocess
import sys
import time

import anyio
import httpx2
from mcp import Client, MCPError
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import PromptReference, ResourceTemplateReference

P = os.environ["TOMO_PREFIX"]
WEB = f"{P}-web"
WEB_URI = f"tomo://apps/{WEB}"
STATE = os.path.join(os.environ["TOMO_DIR"], "state")
NOTIFY_WITHIN = 1.0


def ok(msg):
    print(f"ok: {msg}", flush=True)


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


class Inbox:
    """The notifications a session received, with when they came."""

    def __init__(self):
        self.items = []

    async def handler(self, message):
        method = getattr(message, "method", None)
        if method in ("notifications/resources/updated", "notifications/resources/list_changed"):
            uri = getattr(getattr(message, "params", None), "uri", None)
            self.items.append((time.monotonic(), method, uri))

    async def wait(self, since, method, uri=None, within=NOTIFY_WITHIN):
        deadline = since + within
        while time.monotonic() < deadline + 0.05:
            for at, m, u in self.items:
                if at >= since and m == method and (uri is None or u == uri):
                    return at - since
            await anyio.sleep(0.01)
        fail(f"no {method} {uri or ''} within {within}s; got {self.items}")


def stdio(role, inbox=None, mode="auto"):
    params = StdioServerParameters(
        command=os.environ["TOMO_BIN"],
        args=["serve", "--stdio", "--role", role],
        cwd=os.environ["TOMO_DIR"],
        env={"PATH": os.environ.get("PATH", ""), "DATA_DIRECTORY": "data", "TOMO_LOG": "warn",
             "MCP_DRIFT_INTERVAL": "200ms"},
    )
    return Client(params, mode=mode, message_handler=inbox.handler if inbox else None)


def http(mode, inbox=None):
    headers = {"Authorization": f"Bearer {os.environ['TOMO_TOKEN']}"}
    transport = streamable_http_client(os.environ["TOMO_URL"], http_client=httpx2.AsyncClient(headers=headers))
    return Client(transport, mode=mode, message_handler=inbox.handler if inbox else None)


def edit_web(value):
    """Changes the env of P-web in its manifest (not applied)."""
    path = os.path.join(STATE, "apps", "web.yaml")
    text = open(path).read()
    lines = [l for l in text.splitlines() if not l.startswith("labels:")]
    lines.append(f"labels: {{edited: \"{value}\"}}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


async def expect_error(what, coro, code=None):
    try:
        await coro
    except MCPError as e:
        if code is not None and e.code != code:
            fail(f"{what}: error {e.code} ({e.error.message}), expected {code}")
        ok(f"{what}: error {e.code}: {e.error.message[:100]}")
        return
    fail(f"{what}: no error")


async def completions(c, label):
    r = await c.complete(PromptReference(name="investigate_app"), {"name": "app", "value": f"{P}-we"})
    values = r.completion.values
    if values != [WEB, f"{P}-webmail"] or r.completion.total != 2 or r.completion.has_more:
        fail(f"{label}: completion of `{P}-we` gave {r.completion}")
    ok(f"{label}: app names by prefix: {values}")
    r = await c.complete(ResourceTemplateReference(uri="tomo://apps/{name}"), {"name": "name", "value": f"{P}-d"})
    if r.completion.values != [f"{P}-db"]:
        fail(f"{label}: template completion gave {r.completion}")
    ok(f"{label}: tomo://apps/{{name}} completes {r.completion.values}")
    r = await c.complete(PromptReference(name="deploy_app_safely"), {"name": "server", "value": "lo"})
    if r.completion.values != ["local"]:
        fail(f"{label}: server completion gave {r.completion}")
    r = await c.complete(PromptReference(name="deploy_app_safely"), {"name": "image", "value": "ng"})
    if r.completion.values:
        fail(f"{label}: an image completed to {r.completion.values}")
    ok(f"{label}: servers complete, free text (image) completes to nothing")
    await expect_error(f"{label}: unknown argument",
                       c.complete(PromptReference(name="investigate_app"), {"name": "colour", "value": "x"}), -32602)
    await expect_error(f"{label}: unknown prompt",
                       c.complete(PromptReference(name="nope"), {"name": "app", "value": "x"}), -32602)


async def resources(c, label):
    templates = await c.list_resource_templates()
    uris = sorted(t.uri_template for t in templates.resource_templates)
    if uris != ["tomo://apps/{name}", "tomo://proposals/{id}"]:
        fail(f"{label}: templates {uris}")
    listed = [str(r.uri) for r in (await c.list_resources()).resources]
    if "tomo://status" not in listed:
        fail(f"{label}: tomo://status not listed: {listed}")
    app = await c.read_resource(WEB_URI)
    text = app.contents[0].text
    if f'"name": "{WEB}"' not in text or '"containers"' not in text or '"state"' not in text:
        fail(f"{label}: {WEB_URI} read {text[:400]}")
    status = await c.read_resource("tomo://status")
    if '"containers"' not in status.contents[0].text:
        fail(f"{label}: tomo://status read {status.contents[0].text[:300]}")
    ok(f"{label}: templates, tomo://status and {WEB_URI} (manifest + live state) read")
    await expect_error(f"{label}: reading tomo://apps/nope", c.read_resource("tomo://apps/nope"))


async def legacy_subscription(c, inbox, label):
    await expect_error(f"{label}: subscribe to a resource that does not exist",
                       c.subscribe_resource("tomo://apps/nope"), -32002)
    await expect_error(f"{label}: subscribe to a foreign URI", c.subscribe_resource("http://example.com/x"), -32002)
    await c.subscribe_resource(WEB_URI)
    t0 = time.monotonic()
    edit_web(f"{label}-1")
    took = await inbox.wait(t0, "notifications/resources/updated", WEB_URI)
    ok(f"{label}: {WEB_URI} updated {took * 1000:.0f} ms after a manifest edit")
    await c.unsubscribe_resource(WEB_URI)
    await c.unsubscribe_resource(WEB_URI)  # twice: no error
    t0 = time.monotonic()
    edit_web(f"{label}-2")
    await anyio.sleep(0.6)
    if any(at >= t0 and u == WEB_URI for at, _, u in inbox.items):
        fail(f"{label}: notified after unsubscribing")
    ok(f"{label}: nothing after unsubscribing")
    await c.list_tools(cache_mode="bypass")
    ok(f"{label}: the server keeps serving")


async def container_stopped_by_hand(c, inbox, label):
    await c.subscribe_resource(WEB_URI)
    t0 = time.monotonic()
    subprocess.run(["docker", "stop", "-t", "0", WEB], check=True, capture_output=True)
    took = await inbox.wait(t0, "notifications/resources/updated", WEB_URI)
    ok(f"{label}: {WEB_URI} updated {took * 1000:.0f} ms after `docker stop` by hand")


async def listen_subscription(c, label, extra):
    async with c.listen(resource_subscriptions=[WEB_URI, "tomo://apps/nope"], resources_list_changed=True) as sub:
        honored = sorted(sub.honored.resource_subscriptions or [])
        if honored != [WEB_URI] or not sub.honored.resources_list_changed:
            fail(f"{label}: honored {sub.honored}")
        ok(f"{label}: listen honours {honored} and list changes, not tomo://apps/nope")
        t0 = time.monotonic()
        edit_web(f"{label}-1")
        with anyio.fail_after(NOTIFY_WITHIN):
            async for event in sub:
                if isinstance(event, ResourceUpdated) and event.uri == WEB_URI:
                    break
        ok(f"{label}: {WEB_URI} updated {(time.monotonic() - t0) * 1000:.0f} ms after a manifest edit")
        t0 = time.monotonic()
        with open(os.path.join(STATE, "apps", f"{extra}.yaml"), "w") as f:
            f.write(f"kind: App\nname: {P}-{extra}\nserver: local\nimage: nginx:1.27\n")
        with anyio.fail_after(NOTIFY_WITHIN):
            async for event in sub:
                if isinstance(event, ResourcesListChanged):
                    break
        ok(f"{label}: list_changed {(time.monotonic() - t0) * 1000:.0f} ms after a manifest was added")


async def proposal_subscription():
    """An agent's change is a proposal; a subscriber hears when an admin decides it."""
    async with stdio("agent", None, "legacy") as agent:
        r = await agent.call_tool("app_update", {"name": f"{P}-db", "env": {"B": "2"}})
        proposal = (getattr(r, "structured_content", None) or {}).get("proposal")
        if r.is_error or not proposal:
            fail(f"agent app_update did not propose: {r.content}")
    inbox = Inbox()
    async with stdio("admin", inbox, "legacy") as admin:
        r = await admin.complete(ResourceTemplateReference(uri="tomo://proposals/{id}"), {"name": "id", "value": ""})
        if proposal not in r.completion.values:
            fail(f"proposal ids completed {r.completion}")
        ok(f"stdio: proposal ids complete ({len(r.completion.values)})")
        uri = f"tomo://proposals/{proposal}"
        await admin.subscribe_resource(uri)
        t0 = time.monotonic()
        r = await admin.call_tool("proposal_reject", {"id": proposal, "reason": "not now"})
        if r.is_error:
            fail(f"proposal_reject: {r.content}")
        took = await inbox.wait(t0, "notifications/resources/updated", uri)
        ok(f"stdio: {uri} updated {took * 1000:.0f} ms after it was rejected")
        text = (await admin.read_resource(uri)).contents[0].text
        if '"rejected"' not in text:
            fail(f"{uri} reads {text[:300]}")


async def checks():
    inbox = Inbox()
    async with stdio("viewer", inbox, "legacy") as c:
        if not c.server_capabilities.completions or not c.server_capabilities.resources.subscribe:
            fail(f"capabilities: {c.server_capabilities}")
        await completions(c, "stdio")
        await resources(c, "stdio")
        await legacy_subscription(c, inbox, "stdio")
    async with stdio("viewer") as c:
        if c.protocol_version != "2026-07-28":
            fail(f"stdio auto mode negotiated {c.protocol_version}")
        await listen_subscription(c, "stdio 2026-07-28", "extra-a")
    await proposal_subscription()
    inbox = Inbox()
    async with http("legacy", inbox) as c:
        await completions(c, "http 2025-11-25")
        await legacy_subscription(c, inbox, "http 2025-11-25")
        await container_stopped_by_hand(c, inbox, "http 2025-11-25")
    async with http("auto", None) as c:
        if c.protocol_version != "2026-07-28":
            fail(f"auto mode negotiated {c.protocol_version}")
        await completions(c, "http 2026-07-28")
        await resources(c, "http 2026-07-28")
        await listen_subscription(c, "http 2026-07-28", "extra-b")


if __name__ == "__main__":
    asyncio.run(checks())
    print("all checks passed")
