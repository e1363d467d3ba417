"""The monitoring and logs tools through the official Python MCP SDK (PyPI `mcp`).

Run by tests/it/mcp_monitoring.rs after a real collection round. Each of the
eight tools (metrics_system, metrics_server, metrics_app, metrics_history,
metrics_summary, logs_system, logs_app, logs_purge) is called with valid
arguments and its structured content validated against the output schema
the server lists (jsonschema); bad arguments give a tool error naming the
argument; logs_purge is refused to a viewer and done for an admin.
Environment: TOMO_BIN, TOMO_DIR (as tests/mcp_client.py), TOMO_APP (an app
with a running container, sampled), TOMO_SERVER (its server).
Prints one line per check and exits non-zero on the first failure.
"""

import asyncio
import os

import jsonschema
from mcp import Client

from mcp_client import fail, ok, stdio_params, structured

TOOLS = [
    "metrics_system", "metrics_server", "metrics_app", "metrics_history", "metrics_summary",
    "logs_system", "logs_app", "logs_purge",
]


async def schemas(client):
    listed = await client.list_tools(cache_mode="bypass")
    out = {t.name: t for t in listed.tools if t.name in TOOLS}
    if sorted(out) != sorted(TOOLS):
        fail(f"tools/list lacks {sorted(set(TOOLS) - set(out))}")
    for name, t in out.items():
        schema = getattr(t, "output_schema", None) or getattr(t, "outputSchema", None)
        if not schema:
            fail(f"{name} lists no output schema")
        jsonschema.validators.validator_for(schema).check_schema(schema)
    return out


async def valid(client, tools, name, args):
    r = await client.call_tool(name, args)
    if r.is_error:
        fail(f"{name} {args}: {r.content[0].text}")
    data = structured(r)
    if data is None:
        fail(f"{name}: no structured content")
    t = tools[name]
    schema = getattr(t, "output_schema", None) or getattr(t, "outputSchema", None)
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as e:
        fail(f"{name}: structured content does not match the output schema: {e.message}")
    ok(f"{name} {args}: matches its output schema")
    return data


async def bad(client, name, args, arg):
    r = await client.call_tool(name, args)
    text = r.content[0].text if r.content else ""
    if not r.is_error:
        fail(f"{name} {args} did not fail")
    if f"`{arg}`" not in text:
        fail(f"{name} {args}: the error does not name `{arg}`: {text}")
    ok(f"{name} {args}: tool error naming `{arg}`: {text[:100]}")


async def as_viewer(app, server):
    async with Client(stdio_params("viewer")) as c:
        tools = await schemas(c)
        await asyncio.sleep(2.2)
        s = await valid(c, tools, "metrics_system", {})
        if s["daemon"]["serve"] != "stdio" or s["uptime_seconds"] < 2:
            fail(f"metrics_system: {s}")
        ok(f"metrics_system: daemon {s['daemon']}, up {s['uptime_seconds']} s")
        s = await valid(c, tools, "metrics_server", {"server": server})
        if s.get("error") or not s["readings"]:
            fail(f"metrics_server: {s}")
        s = await valid(c, tools, "metrics_app", {"name": app})
        if not any(r["figure"] == "container_memory_bytes" for r in s["readings"]):
            fail(f"metrics_app: no memory figure: {s}")
        h = await valid(c, tools, "metrics_history",
                        {"figure": "container_memory_bytes", "since": "1h", "step": "1m", "apps": [app]})
        if not h["series"] or not h["series"][0]["points"]:
            fail(f"metrics_history: no series: {h}")
        ok(f"metrics_history: {len(h['series'])} series, step {h['step']} s")
        s = await valid(c, tools, "metrics_summary", {})
        if not any(b["server"] == server for b in s["servers"]):
            fail(f"metrics_summary: no {server}: {s}")
        s = await valid(c, tools, "logs_system", {"since": "1h", "level": "info", "limit": 50})
        ok(f"logs_system: {len(s['events'])} event(s)")
        s = await valid(c, tools, "logs_app", {"name": app, "since": "1h", "tail": 20, "grep": "tick"})
        if not s["lines"] or not all("tick" in line["text"] for line in s["lines"]):
            fail(f"logs_app: {s}")
        ok(f"logs_app: {len(s['lines'])} line(s)")

        await bad(c, "metrics_server", {"server": "nowhere"}, "server")
        await bad(c, "metrics_server", {"server": "Not A Name"}, "server")
        await bad(c, "metrics_app", {"name": "nowhere"}, "name")
        await bad(c, "metrics_history", {"figure": "host_cpu_ratio", "since": "yesterday"}, "since")
        await bad(c, "metrics_history", {"figure": "host_cpu_ratio", "step": "-1"}, "step")
        await bad(c, "metrics_history", {"figure": "disk_full"}, "figure")
        await bad(c, "metrics_history", {"figure": "host_cpu_ratio", "servers": ["Bad Name"]}, "servers")
        await bad(c, "logs_system", {"since": "soon"}, "since")
        await bad(c, "logs_system", {"grep": "("}, "grep")
        await bad(c, "logs_system", {"limit": 0}, "limit")
        await bad(c, "logs_app", {"name": "nowhere"}, "name")
        await bad(c, "logs_app", {"name": app, "service": "nowhere"}, "service")
        await bad(c, "logs_app", {"name": app, "since": "later"}, "since")
        await bad(c, "logs_app", {"name": app, "tail": 0}, "tail")
        await bad(c, "logs_app", {"name": app, "grep": "[z-a]"}, "grep")

        r = await c.call_tool("logs_purge", {"before": "1d"})
        if not r.is_error or "`admin` permission" not in r.content[0].text:
            fail(f"logs_purge by a viewer: {r}")
        ok(f"logs_purge by a viewer: refused: {r.content[0].text[:80]}")


async def as_admin():
    async with Client(stdio_params("admin")) as c:
        tools = await schemas(c)
        await bad(c, "logs_purge", {"before": "eventually"}, "before")
        s = await valid(c, tools, "logs_purge", {"before": "30d", "system": True, "metrics": True})
        ok(f"logs_purge by an admin: {s}")


async def checks():
    app, server = os.environ["TOMO_APP"], os.environ["TOMO_SERVER"]
    await as_viewer(app, server)
    await as_admin()


if __name__ == "__main__":
    asyncio.run(checks())
    print("all checks passed")
