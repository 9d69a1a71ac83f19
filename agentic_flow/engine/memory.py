"""How much memory the prefix cache may hold, pure (the inference process reads the figures).

The kept generators' KV caches are the only memory of the inference process that grows with use: a
KV token costs layers x 2 (key and value) x KV heads x head size x 4 bytes (the CPU builds keep
past_key_values in float32), 45 KB on SmolLM2-135M and 56 KB on Qwen2.5-Coder-1.5B.  The budget is
a share of the memory available when the process starts, never more than the cache's entries can
use (PREFIX_ENTRIES full contexts), unless `--prefix-cache-mb` says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

KV_DTYPE_BYTES = 4  # float32: what the builder's CPU models take as past_key_values
AVAILABLE_SHARE = 0.25  # of the memory available at start: the OS, the proxy and other programs keep the rest
MIB = 1 << 20


def kv_bytes_per_token(genai_config: Mapping[str, object]) -> int:
    """Bytes of KV cache per token, from a model's genai_config.json."""
    model = genai_config.get("model")
    decoder = model.get("decoder") if isinstance(model, Mapping) else None
    if not isinstance(decoder, Mapping):
        raise ValueError("genai_config.json has no model.decoder section")
    heads = int(decoder.get("num_key_value_heads") or decoder["num_attention_heads"])
    head_size = int(decoder.get("head_size") or int(decoder["hidden_size"]) // int(decoder["num_attention_heads"]))
    return int(decoder["num_hidden_layers"]) * 2 * heads * head_size * KV_DTYPE_BYTES


@dataclass(frozen=True)
class Budget:
    tokens: int  # KV tokens the kept generators may hold together
    reason: str  # how it was chosen, for the log


def prefix_budget(*, context_length: int, max_entries: int, bytes_per_token: int, available_bytes: int,
                  override_mb: int | None) -> Budget:
    """The prefix cache's budget in KV tokens: `override_mb` when set (0 keeps nothing), else a share of
    the available memory, capped at what `max_entries` full contexts hold."""
    if override_mb is not None:
        tokens = override_mb * MIB // bytes_per_token
        return Budget(tokens, f"{override_mb} MB as set (--prefix-cache-mb)")
    share = int(available_bytes * AVAILABLE_SHARE)
    cap = max_entries * context_length
    tokens = min(share // bytes_per_token, cap)
    why = (f"{AVAILABLE_SHARE:.0%} of {available_bytes // MIB} MB available" if tokens < cap
           else f"{max_entries} full contexts, within {AVAILABLE_SHARE:.0%} of {available_bytes // MIB} MB available")
    return Budget(tokens, f"{tokens * bytes_per_token // MIB} MB: {why}")
