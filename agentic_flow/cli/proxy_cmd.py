"""`agentic-flow proxy start | status | stop`."""

from __future__ import annotations

import os

import typer
from rich.table import Table

from ..errors import ProxyError
from ..launcher import records, supervisor
from ..settings import proxy_settings, show_duration
from .common import cli_errors, count, err, out

app = typer.Typer(help="Run the local Anthropic-compatible proxy.", no_args_is_help=True)


@app.command()
def start(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (non-loopback needs --api-key)."),
    port: int | None = typer.Option(None, parser=count(1), help="Port [env: ONNX_PROXY_PORT, default 3001]."),
    model: str | None = typer.Option(None, help="Catalog name or model folder [env: ONNX_MODEL_PATH]."),
    api_key: str | None = typer.Option(None, help="Require this key [env: AGENTIC_FLOW_API_KEY]."),
    max_queue: int | None = typer.Option(None, parser=count(0),
                                         help="Requests that may wait before 529 overloaded (64)."),
    prefix_cache_mb: int | None = typer.Option(None, parser=count(0), metavar="MB", help="KV cache the prefix cache "
                                               "may keep (default: a quarter of the available memory) "
                                               "[env: AGENTIC_FLOW_PREFIX_CACHE_MB]."),
    draft_tokens: int | None = typer.Option(None, parser=count(0), metavar="N", help="Speculative decoding: the "
                                            "largest n-gram draft verified in one pass, for a request that runs "
                                            "alone (0: off, the default; 4 measured best; at most 16) "
                                            "[env: AGENTIC_FLOW_DRAFT_TOKENS]."),
    speculate_greedy: str | None = typer.Option(None, metavar="on|off", help="Speculate greedy requests too "
                                                "(their output can differ where two tokens nearly tie; default "
                                                "off) [env: AGENTIC_FLOW_SPECULATE_GREEDY]."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Run in the background and return."),
    provider: str | None = typer.Option(None, help="onnx (default), or an OpenAI-compatible upstream to front: "
                                        "openai, openrouter, gemini (then --model names the upstream's model)."),
    upstream: str | None = typer.Option(None, help="Upstream base URL [env: OPENAI_BASE_URL, "
                                        "OPENROUTER_BASE_URL, GEMINI_BASE_URL]."),
    tool_policy: str | None = typer.Option(None, help="The tools a model is offered: auto (its catalog entry's "
                                           "list), all, or names: Read,Write,Edit [env: AGENTIC_FLOW_TOOL_POLICY]."),
    idle_exit: str | None = typer.Option(None, metavar="DURATION", help="Exit by itself after this long without "
                                         "a request: seconds, or 90s, 5m, 1h (default: never)."),
) -> None:
    """Start the proxy: verify and load the model, then serve the Anthropic Messages API (and OpenAI's
    Chat Completions).  With an upstream provider, serve the Messages API from that server instead.

    \b
    Example: agentic-flow proxy start --port 3001 --detach
    Example: agentic-flow proxy start --detach --idle-exit 30m
    Example: agentic-flow proxy start --provider openai --upstream http://gpu:8000 --model Qwen/Qwen2.5-7B-Instruct
    """
    with cli_errors():
        settings = proxy_settings(host=host, port=port, model=model, api_key=api_key, max_queue=max_queue,
                                  provider=provider, upstream=upstream, tool_policy=tool_policy,
                                  prefix_cache_mb=prefix_cache_mb, idle_exit=idle_exit, draft_tokens=draft_tokens,
                                  speculate_greedy=speculate_greedy)
        url = supervisor.base_url(settings)
        name = supervisor.describe(settings)
        if supervisor.probe(url) is not None:
            raise ProxyError(f"a proxy is already running at {url}; stop it with `agentic-flow proxy stop`")
        supervisor.check_port_free(settings)
        if detach:
            with err.status(f"loading {name} ..."):
                supervisor.start_detached(settings, deadline_s=300)
            out.print(url)
            return
        from ..proxy.server import run

        records.write(records.ProxyRecord(os.getpid(), settings.host, settings.port, url, name, False,
                                          settings.idle_exit))
        try:
            code = run(settings)
        finally:
            records.remove(settings.port)
        raise typer.Exit(code)


@app.command()
def status() -> None:
    """Show the proxies that are running (checked, not just read from a file).

    Example: agentic-flow proxy status
    """
    with cli_errors():
        live, stale = records.running()
        for path in stale:
            err.print(f"removed a stale record: {path}", highlight=False)
        if not live:
            err.print("no proxy is running")
            raise typer.Exit(1)
        table = Table("pid", "url", "model", "status", "in flight", "uptime (s)", "idle exit")
        for rec in live:
            health = supervisor.probe(rec.url)
            if health is None:
                table.add_row(str(rec.pid), rec.url, rec.model, "not answering", "-", "-", "-")
            else:
                idle = show_duration(health.idle_exit_s) if health.idle_exit_s else "never"
                table.add_row(str(rec.pid), rec.url, rec.model, health.status.value,
                              str(health.requests_in_flight), str(health.uptime_seconds), idle)
        out.print(table)


@app.command()
def stop(
    port: int | None = typer.Option(None, help="Stop only the proxy on this port (default: all)."),
) -> None:
    """Stop running proxies: SIGTERM, a grace period for in-flight streams, then kill what remains.

    Example: agentic-flow proxy stop --port 3001
    """
    with cli_errors():
        live, _ = records.running()
        targets = [r for r in live if port is None or r.port == port]
        if not targets:
            err.print("no proxy is running" + (f" on port {port}" if port else ""))
            raise typer.Exit(1)
        for rec in targets:
            supervisor.terminate_tree(rec.pid)
            records.remove(rec.port)
            out.print(f"stopped the proxy on port {rec.port} (pid {rec.pid})")
