"""`python -m agentic_flow.proxy`: the proxy process.  It takes every setting as an argument (the
CLI resolves flags and variables once and passes them down); only the API key may come from the
AGENTIC_FLOW_API_KEY variable, so that it never shows in a process listing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .. import settings as cfg
from ..errors import AgenticFlowError


def parse_args(argv: list[str] | None = None) -> cfg.ProxySettings:
    p = argparse.ArgumentParser(prog="python -m agentic_flow.proxy",
                                description="Anthropic-compatible proxy for a local ONNX model.")
    d = cfg.ProxySettings()
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--model", default=d.model, help="catalog name or model folder path")
    p.add_argument("--model-dir", type=Path, default=None, help="the model store")
    p.add_argument("--providers", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    p.add_argument("--max-body", type=int, default=d.max_body)
    p.add_argument("--max-queue", type=int, default=d.max_queue)
    p.add_argument("--max-batch", type=int, default=d.max_batch)
    p.add_argument("--grace", type=float, default=d.grace_seconds)
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process dies")
    p.add_argument("--log-level", default=d.log_level, choices=["debug", "info", "warning", "error"])
    a = p.parse_args(argv)
    env = cfg.environ()
    api_key = env.get("AGENTIC_FLOW_API_KEY") or None
    cfg.check_bind(a.host, api_key)
    return cfg.ProxySettings(
        host=a.host, port=a.port, model=a.model, model_dir=a.model_dir or cfg.model_dir(env),
        providers=cfg.parse_providers(a.providers), threads=a.threads, api_key=api_key,
        max_body=a.max_body, max_queue=a.max_queue, max_batch=a.max_batch, grace_seconds=a.grace,
        log_level=a.log_level, parent_pid=a.parent_pid,
    )


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
        # Imported here, not at the top: the inference process (multiprocessing "spawn") re-imports this
        # module as its __main__, and it needs none of the server.
        from .server import configure_logging, serve

        configure_logging(settings.log_level)
        return asyncio.run(serve(settings))
    except AgenticFlowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
