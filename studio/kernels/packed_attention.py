# Patches: registers a custom attention and mask function with transformers' AttentionInterface and
# ALL_MASK_ATTENTION_FUNCTIONS, and switches a model to them with set_attn_implementation; falls back
# to transformers.integrations.sdpa_attention (sdpa_attention_forward, repeat_kv). share_prefix swaps
# the Trainer's data_collator and its private `_track_num_input_tokens`.
# Checked against torch 2.13.0, transformers 5.23.0, trl 1.16.0.
"""Attention for padding-free packed rows that attends within each example only, without a mask.

Padding-free training packs a batch into one row whose position ids restart at every example. With
sdpa, transformers turns that into a dense block-diagonal mask over the whole row, so a row of 8
examples of 64 tokens costs the attention of one 512-token sequence (8x the work) and the CPU kernel
cannot skip the masked blocks. Here the examples are laid out as a right-padded [examples, width]
grid and attend with plain batched matmuls and a causal mask: the same result (tests/test_train.py
compares losses, gradients and each example alone) for an eighth of the attention work, about 11%
of a training step of the default model (bench/train_speed.py). One CPU flash-attention call per
example is slower still: its backward has a high fixed cost per call. GPUs with flash-attention have
varlen kernels for this; this is the CPU's equivalent.
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
    if position_ids is None or query.shape[0] != 1 or attention_mask is not None or query.shape[2] != key.shape[2]:
        # Not a packed training row (generation with a cache, padded batches): the stock path.
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    slot, rows, width, shared, offsets = _layout(position_ids)
    heads, dim = query.shape[1], query.shape[3]

    def batched(t):  # [1, H, N, D] -> [rows, H, width, D], zeros in the unused slots
        flat = t.new_zeros(heads, rows * width, dim)
        flat[:, slot] = t[0]
        return flat.view(heads, rows, width, dim).transpose(0, 1)

    q, k, v = batched(query), batched(key), batched(value)
    scale = scaling if scaling is not None else dim ** -0.5
    scores = (q @ k.transpose(-1, -2)) * scale
    causal = torch.ones(width, width, dtype=torch.bool, device=q.device).triu(1)
    if window:  # a sliding-window layer (Gemma 3, Mistral) sees only the last `window` positions, itself included
        causal |= torch.ones(width, width, dtype=torch.bool, device=q.device).tril(-window)
    scores = scores.masked_fill(causal, float("-inf"))
    if shared:
        # Examples that continue the row's shared prefix also attend to its keys, as their own copy would.
        prefix = (q @ key[0, :, :shared].transpose(-1, -2)) * scale  # [rows, H, width, shared]
        offsets = offsets.to(q.device)
        keys_at = torch.arange(shared, device=q.device)
        hidden = (keys_at[None, :] >= offsets[:, None])[:, None, :]  # [rows, 1, shared]
        if window:
            queries_at = offsets[:, None] + torch.arange(width, device=q.device)[None, :]  # [rows, width]
            hidden = hidden | (queries_at[:, :, None] - keys_at[None, None, :] >= window)
        scores = torch.cat([prefix.masked_fill(hidden[:, None], float("-inf")), scores], -1)
    probs = scores.softmax(-1, dtype=torch.float32).to(v.dtype)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, dropout)
    out = probs[..., shared:] @ v
    if shared:
        out = out + probs[..., :shared] @ value[0, :, :shared]
    out = out.transpose(0, 1).reshape(heads, rows * width, dim)[:, slot]
    return out.transpose(0, 1).unsqueeze(0).contiguous(), None


_layouts: dict = {}


def _layout(position_ids: torch.Tensor) -> tuple[torch.Tensor, int, int, int, torch.Tensor]:
    """Each token's slot in a [rows, width] grid of examples, right-padded; the same for every layer of a step.

    An example starts wherever the position ids do not count on. One that starts at position p > 0
    continues the row's first p tokens, a prefix it shares with the row's first example
    (SharedPrefixCollator). Returns (slot, rows, width, shared prefix length, each row's start position).
    The single-token "examples" that round a row up (pad) share one row: they carry no label, and
    nothing real attends to them.
    """
    pos = position_ids[0]
    restart = torch.ones_like(pos, dtype=torch.bool)
    restart[1:] = pos[1:] != pos[:-1] + 1
    starts = restart.nonzero().flatten().tolist() + [pos.shape[0]]
    key = (tuple(starts), tuple(pos[starts[:-1]].tolist()))
    if key in _layouts:
        return _layouts[key]
    spans: list[tuple[int, int, bool, int]] = []
    for (s, e), offset in zip(zip(starts[:-1], starts[1:], strict=True), key[1], strict=True):
        if e - s == 1 and offset == 0 and spans and spans[-1][1] == s and spans[-1][2]:
            spans[-1] = (spans[-1][0], e, True, 0)
        else:
            spans.append((s, e, e - s == 1 and offset == 0, offset))
    shared = max(offset for *_, offset in spans)
    if shared and (spans[0][3] != 0 or spans[0][1] - spans[0][0] < shared):
        raise ValueError("A packed example continues a prefix the row does not start with.")
    width = max(e - s for s, e, *_ in spans)
    slot = torch.cat([torch.arange(s, e) - s + i * width for i, (s, e, *_) in enumerate(spans)])
    offsets = torch.tensor([offset for *_, offset in spans])
    _layouts.clear()  # one step's layout at a time
    _layouts[key] = (slot, len(spans), width, shared, offsets)
    return _layouts[key]


class SharedPrefixCollator:
    """Packs a batch into one row that holds the prefix every example starts with (the system prompt) once.

    Chat templates put the same system prompt before every question: a third of the default model's
    tokens on short Q&A pairs. The first example keeps it; the others start right after it, with
    position ids that count on from it, and packed_attention lets them attend to that one copy. Each
    example's logits are those of the example alone, and the prefix's gradient is the sum its copies
    would get, so the loss and the gradients are the same as without sharing, for fewer tokens.
    Batches without a long enough common untrained prefix go to `inner` (TRL's padding-free collator).
    """

    MIN_SHARED = 8  # below this the saving does not pay for a second layout

    def __init__(self, inner, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.inner, self.pad_token_id, self.pad_to_multiple_of = inner, pad_token_id, pad_to_multiple_of

    def __call__(self, examples: list[dict]) -> dict:
        ids = [list(e["input_ids"]) for e in examples]
        labels = [list(e.get("labels", e["input_ids"])) for e in examples]
        shared = min(len(i) for i in ids) - 1
        for lab in labels:  # the prefix and the token after it must be untrained: nothing predicts that one now
            shared = min(shared, next((j for j, t in enumerate(lab) if t != -100), len(lab)) - 1)
        first = ids[0]
        shared = next((j for j in range(shared) if any(i[j] != first[j] for i in ids[1:])), shared)
        if len(examples) < 2 or shared < self.MIN_SHARED:
            return self.inner(examples)
        row, row_labels, pos = list(first), list(labels[0]), list(range(len(first)))
        row_labels[0] = -100
        for i, lab in zip(ids[1:], labels[1:], strict=True):
            row += i[shared:]
            row_labels += [-100] + lab[shared + 1:]  # an example's first token is never predicted across rows
            pos += range(shared, len(i))
        pad = -len(row) % self.pad_to_multiple_of if self.pad_to_multiple_of else 0
        row, row_labels, pos = row + [self.pad_token_id] * pad, row_labels + [-100] * pad, pos + [0] * pad
        return {"input_ids": torch.tensor([row]), "labels": torch.tensor([row_labels]),
                "position_ids": torch.tensor([pos])}


def data_tokens(inputs: dict, pad_token_id: int | None) -> int:
    """The non-pad tokens of a batch counted as if every example carried its own copy of the shared prefix.

    So tokens/s stays the rate at which the data is trained, comparable with a run that does not share.
    """
    ids = inputs["input_ids"]
    real = int((ids != pad_token_id).sum()) if pad_token_id is not None else ids.numel()
    pos = inputs.get("position_ids")
    if pos is None:
        return real
    _, _, _, shared, offsets = _layout(pos)
    if not shared:
        return real
    prefix = ids[0, :shared]
    counts = torch.cumsum((prefix != pad_token_id).long() if pad_token_id is not None else torch.ones_like(prefix), 0)
    return real + sum(int(counts[o - 1]) for o in offsets.tolist() if o > 0)


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


def share_prefix(trainer, pad_to_multiple_of: int | None) -> None:
    """Give an SFT trainer on a packed-attention model SharedPrefixCollator, and count tokens as the data has them."""
    pad_id = trainer.processing_class.pad_token_id
    trainer.data_collator = SharedPrefixCollator(trainer.data_collator, pad_id, pad_to_multiple_of)

    def track(inputs):
        if trainer.args.include_num_input_tokens_seen == "no":
            return
        count = torch.as_tensor(data_tokens(inputs, pad_id), device=trainer.args.device, dtype=torch.int64)
        trainer.state.num_input_tokens_seen += trainer.accelerator.gather(count).sum().item()
        # What the model really ran on, for utilisation figures (bench/train_speed.py): not saved in checkpoints.
        real = torch.as_tensor(int((inputs["input_ids"] != pad_id).sum()), device=trainer.args.device)
        trainer.state.tokens_computed = getattr(trainer.state, "tokens_computed", 0) + \
            trainer.accelerator.gather(real).sum().item()

    trainer._track_num_input_tokens = track

