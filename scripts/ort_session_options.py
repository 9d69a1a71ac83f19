#!/usr/bin/env python3
"""Session options that onnxruntime-genai 0.18's genai_config cannot set (thread spinning), tried on the
same model.onnx through plain onnxruntime: one prefill of a short prompt, then decode steps.

usage: python scripts/ort_session_options.py [--model smollm2-135m|FOLDER] [--tokens 40] [--steps 32]

For each combination of intra-op threads (1, 2) and session.intra_op.allow_spinning (1, the default;
0), prints the median prefill time and decode step time over --repeat runs. The KV cache grows by
concatenation here (no shared buffer), so absolute times differ a little from onnxruntime-genai's;
compare the rows with each other.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort


def session(path: Path, threads: int, spin: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, tokens: int, steps: int, dim: int) -> tuple[float, float]:
    """(prefill ms, median decode step ms)"""
    pasts = [i for i in sess.get_inputs() if i.name.startswith("past_key_values")]
    heads = pasts[0].shape[1]
    feed: dict[str, Any] = {p.name: np.zeros((1, heads, 0, dim), np.float32) for p in pasts}
    ids = np.arange(100, 100 + tokens, dtype=np.int64)[None, :]
    t = time.perf_counter()
    prefill = 0.0
    times = []
    for step in range(steps + 1):
        total = feed[pasts[0].name].shape[2] + ids.shape[1]
        out = sess.run(None, {"input_ids": ids, "attention_mask": np.ones((1, total), np.int64), **feed})
        feed = {p.name: out[1 + i] for i, p in enumerate(pasts)}
        ids = np.asarray([[int(out[0][0, -1].argmax())]], dtype=np.int64)
        now = time.perf_counter()
        if step == 0:
            prefill = (now - t) * 1000
        else:
            times.append((now - t) * 1000)
        t = now
    return prefill, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    folder = Path(a.model) if "/" in a.model else Path.home() / ".cache/agentic-flow/models" / a.model
    dim = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]["head_size"]
    rows = []
    for threads, spin in itertools.product((1, 2), ("1", "0")):
        sess = session(folder / "model.onnx", threads, spin)
        run(sess, a.tokens, 4, dim)  # warm-up: the first run of a session is slower
        res = [run(sess, a.tokens, a.steps, dim) for _ in range(a.repeat)]
        rows.append({"threads": threads, "allow_spinning": spin,
                     "prefill_ms": round(statistics.median(r[0] for r in res), 2),
                     "step_ms": round(statistics.median(r[1] for r in res), 2)})
        print(json.dumps(rows[-1]), flush=True)
        del sess
    return 0


if __name__ == "__main__":
    sys.exit(main())
