"""Attention for padding-free packed rows that attends within each example only, without a mask.

Padding-free training packs a batch into one row whose position ids restart at every example. With
sdpa, transformers turns that into a dense block-diagonal mask over the whole row, so a row of 8
examples of 64 tokens costs the attention of one 512-token sequence (8x the work) and the CPU kernel
cannot skip the masked blocks. Here the examples are laid out as a right-padded [examples, width]
grid and attend with plain batched matmuls and a causal mask: the same result (tests/test_train.py
compares losses, gradients and each example alone) for an eighth of the attention work. (One CPU
flash-attention call per example was slower still: its backward has a high fixed cost per call.)
A training step of the default model got ~11% faster (bench/train_speed.py). GPUs with
flash-attention have varlen kernels for this; this is the CPU's equivalent.
"""

from __future__ import annotations

import torch

NAME = "studio_packed"


def packed_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                     is_causal=None, **kwargs):
    """Same signature and output as transformers' sdpa_attention_forward ([batch, seq, heads, dim], None)."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    window = kwargs.get("sliding_window") or getattr(module, "sliding_window", None)
    if (position_ids is None or query.shape[0] != 1 or attention_mask is not None or query.shape[2] != key.shape[2]
            or (window and query.shape[2] > window)):
        # Not a packed training row (generation with a cache, padded batches): the stock path.
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    slot, rows, width = _layout(position_ids)
    heads, dim = query.shape[1], query.shape[3]

    def batched(t):  # [1, H, N, D] -> [rows, H, width, D], zeros in the unused slots
        flat = t.new_zeros(heads, rows * width, dim)
        flat[:, slot] = t[0]
        return flat.view(heads, rows, width, dim).transpose(0, 1)

    q, k, v = batched(query), batched(key), batched(value)
    scores = (q @ k.transpose(-1, -2)) * (scaling if scaling is not None else dim ** -0.5)
    causal = torch.ones(width, width, dtype=torch.bool, device=q.device).triu(1)
    probs = scores.masked_fill(causal, float("-inf")).softmax(-1, dtype=torch.float32).to(v.dtype)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, dropout)
    out = probs @ v
    out = out.transpose(0, 1).reshape(heads, rows * width, dim)[:, slot]
    return out.transpose(0, 1).unsqueeze(0).contiguous(), None


_layouts: dict = {}


def _layout(position_ids: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Each token's slot in a [rows, width] grid of examples, right-padded; the same for every layer of a step.

    Position ids restart at 0 for each example. The single-token "examples" that round a row up (pad)
    share one row: they carry no label, and nothing real attends to them.
    """
    pos = position_ids[0]
    starts = (pos == 0).nonzero().flatten().tolist() + [pos.shape[0]]
    key = tuple(starts)
    if key in _layouts:
        return _layouts[key]
    spans: list[tuple[int, int]] = []
    for s, e in zip(starts[:-1], starts[1:], strict=True):
        if e - s == 1 and spans and spans[-1][1] == s and spans[-1][2]:
            spans[-1] = (spans[-1][0], e, True)
        else:
            spans.append((s, e, e - s == 1))
    width = max(e - s for s, e, _ in spans)
    slot = torch.cat([torch.arange(s, e) - s + i * width for i, (s, e, _) in enumerate(spans)])
    _layouts.clear()  # one step's layout at a time
    _layouts[key] = (slot, len(spans), width)
    return _layouts[key]


def use_packed_attention(model) -> bool:
    """Switch `model` (a transformers model trained on padding-free rows) to per-example attention.

    False, leaving the model as it was, for an architecture that does not take a custom attention.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

    AttentionInterface.register(NAME, packed_attention)
    # Like flash-attention: no 4D mask is built; the position ids say where each example starts.
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, flash_attention_mask)
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, NotImplementedError, AttributeError):
        return False
    return True
