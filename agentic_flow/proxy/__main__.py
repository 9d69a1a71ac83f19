"""`python -m agentic_flow.proxy`: the proxy process.  It takes every setting as an argument (the
CLI resolves flags and variables once and passes them down, `ProxySettings.to_argv`); the API key may
also come from the AGENTIC_FLOW_API_KEY variable, so that it need not show in a process listing."""

from __future__ import annotations

import logging
import os
import sys

from .. import settings as cfg
from ..errors import AgenticFlowError


def parse_args(argv: list[str] | None = None) -> cfg.ProxySettings:
    return cfg.ProxySettings.from_argv(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
        # Imported here, not at the top: the inference process (multiprocessing "spawn") re-imports this
        # module as its __main__, and it needs none of the server.
        from ..launcher import records
        from .server import run

        try:
            return run(settings)
        finally:
            records.remove_own(settings.port, os.getpid())  # written by whoever detached us
    except AgenticFlowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def exit_now(code: int) -> None:
    """Exit without the interpreter's orderly teardown (every module, idle executor threads): it took
    0.4-0.6 s on a loaded 2-core machine, which every one-shot CLI run waited for when stopping its
    proxy.  The server has stopped, the inference process is joined; only the output needs flushing."""
    logging.shutdown()
    # multiprocessing's resource tracker is our child: stop and reap it, or it lingers as an orphan
    # that init reaps late (seen here: 1.2 s), and the supervisor waits for the whole tree.
    from multiprocessing import resource_tracker

    stop_tracker = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop_tracker is not None:
        stop_tracker()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
