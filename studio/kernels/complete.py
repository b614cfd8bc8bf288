# Reaches into transformers' KV cache: subclasses `transformers.cache_utils.DynamicLayer` (its keys,
# values, dtype, device, is_initialized and update/batch_select_indices), replaces `cache.layers`, and
# calls the cache's batch_repeat_interleave and batch_select_indices and the model's `logits_to_keep`.
# Checked against torch 2.13.0, transformers 5.23.0.
"""Batched completion from one model: the loop behind drafting, replay, and evaluation replies.

`generate` pays, on a CPU, for things a batch of prompts with a common start does not need: it
re-runs the shared start for every row, samples over the whole vocabulary with a serial draw per
entry, keeps finished rows in the batch, and grows the cache by a copy of itself each step. This loop
does none of that, and gives the same greedy replies (tests/test_integration.py checks it).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
from transformers.cache_utils import DynamicLayer

from studio.data.chat_format import end_of_turn_ids


@contextmanager
def generating(model, tokenizer):
    """Batched generation: left padding and eval mode, both handed back as they were."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        tokenizer.padding_side = side
        model.train(was_training)


def complete(model, tokenizer, prompts: list[str], samples: int, max_new_tokens: int, stop: set[int],
              temperature: float = 0.0, top_p: float = 1.0, top_k: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """`samples` completions of each prompt (greedy at temperature 0): ([rows, max_new_tokens] ids, stopped).

    A loop of its own rather than `generate`, for costs that dominated drafting on the CPU:
    - The prompts share the few-shot prefix, most of their tokens: it runs through the model once
      and its keys and values are copied to every row (`num_return_sequences` repeats the whole
      prompt before the prefill). Each row is [prefix | padding | its own question], the padding
      masked out and the positions counted past it.
    - `generate` samples over the whole 49k vocabulary of every row at every step (a sort, a cumsum,
      and one random draw per entry for `multinomial`, which is serial on the CPU): 15 of the 23 s of
      a 100-row batch. `nucleus_sample` makes the same draw from the 1024 most likely tokens.
    - Rows that have finished leave the batch (in groups, each leaving copies the cache), and the
      cache has room for the new tokens instead of growing by a copy of itself every step.
    """
    prefix = shared_prefix(prompts)
    tails = [p[len(prefix):] for p in prompts for _ in range(samples)]
    enc = tokenizer(tails, return_tensors="pt", padding=True, add_special_tokens=False)
    device = getattr(model, "device", None) or torch.device("cpu")  # a QLoRA model is on its GPU from the start
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    rows = len(tails)
    cache = None
    with torch.inference_mode():
        if prefix:
            prefix_ids = tokenizer(prefix, return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
            cache = model(input_ids=prefix_ids, use_cache=True).past_key_values
            if all(type(layer) is DynamicLayer for layer in cache.layers):
                cache.layers = [RoomyLayer(layer, rows, ids.shape[1] + max_new_tokens) for layer in cache.layers]
            else:
                cache.batch_repeat_interleave(rows)
            mask = torch.cat([torch.ones(rows, prefix_ids.shape[1], dtype=mask.dtype, device=device), mask], 1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1]:]
        out = torch.full((rows, max_new_tokens), tokenizer.pad_token_id or 0, dtype=torch.long, device=device)
        stopped = torch.zeros(rows, dtype=torch.bool, device=device)
        # The batch's rows: their output rows, and whether each has finished. Finished rows leave the
        # batch and its cache once they are a quarter of it (each leaving copies the whole cache).
        live, done = torch.arange(rows, device=device), torch.zeros(rows, dtype=torch.bool, device=device)
        stops = torch.tensor(sorted(stop), device=device)
        for step in range(max_new_tokens):
            result = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, logits_to_keep=1)
            cache = result.past_key_values
            logits = result.logits[:, -1].float()
            token = (nucleus_sample(logits / temperature, top_p, top_k) if temperature > 0
                     else logits.argmax(-1))
            out[live[~done], step] = token[~done]
            ending = torch.isin(token, stops) & ~done
            stopped[live[ending]] = True
            done |= ending
            if done.all():
                break
            ids, positions = token[:, None], positions[:, -1:] + 1
            mask = torch.cat([mask, torch.ones(len(live), 1, dtype=mask.dtype, device=device)], 1)
            if 4 * done.sum() >= len(live):
                keep = (~done).nonzero().squeeze(-1)
                cache.batch_select_indices(keep)
                live, done, ids, positions, mask = live[keep], done[keep], ids[keep], positions[keep], mask[keep]
    return out.cpu(), stopped.cpu()


class RoomyLayer(DynamicLayer):
    """A cache layer with room reserved for the tokens to come, so a step writes its keys and values in place.

    The stock layer concatenates each step's keys and values onto the whole cache, a copy of every row's
    prefix, question and draft so far: a third of the drafting forward pass on the CPU. Starts as
    `rows` copies of `prefix` (a one-row layer) with room for `room` more tokens.
    """

    def __init__(self, prefix: DynamicLayer, rows: int, room: int):
        super().__init__()
        self.dtype, self.device, self.is_initialized = prefix.dtype, prefix.device, True
        self.length = prefix.keys.shape[-2]
        batch, heads, _, dim = prefix.keys.shape
        if batch != 1:
            raise ValueError("the prefix cache must hold one row")
        self.key_room = prefix.keys.new_empty(rows, heads, self.length + room, dim)
        self.value_room = prefix.values.new_empty(rows, heads, self.length + room, dim)
        self.key_room[:, :, :self.length] = prefix.keys
        self.value_room[:, :, :self.length] = prefix.values
        self._views()

    def _views(self) -> None:
        self.keys, self.values = self.key_room[:, :, :self.length], self.value_room[:, :, :self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        self.key_room[:, :, self.length:end] = key_states
        self.value_room[:, :, self.length:end] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.key_room, self.value_room = self.key_room[indices], self.value_room[indices]
        self._views()


def nucleus_sample(logits: torch.Tensor, top_p: float, top_k: int) -> torch.Tensor:
    """One token per row from the smallest set of most likely tokens whose probability reaches `top_p`.

    Probabilities are the full vocabulary's; only the `top_k` most likely are sorted and drawn from.
    A row whose nucleus is wider than that (0.5% of drafting steps have one wider than 700 tokens)
    is sorted whole, so the draw is exactly top-p sampling's.
    """
    def draw(top, index, log_z):
        probs = (top - log_z).exp()
        probs = probs.masked_fill((probs.cumsum(-1) - probs) > top_p, 0)  # the nucleus; never empty
        return index.gather(-1, torch.multinomial(probs, 1)).squeeze(-1)

    log_z = logits.logsumexp(-1, keepdim=True)
    top, index = logits.topk(min(top_k, logits.shape[-1]), dim=-1)
    wide = (top - log_z).exp().sum(-1) < top_p
    if not wide.any():
        return draw(top, index, log_z)
    token = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    token[~wide] = draw(top[~wide], index[~wide], log_z[~wide])
    token[wide] = draw(*logits[wide].sort(-1, descending=True), log_z[wide])
    return token


def eos_ids(model) -> list[int]:
    """The end-of-turn ids `generate` stops at (the generation config may list several)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return [eos] if isinstance(eos, int) else list(eos or [])


def stop_ids(model, tokenizer) -> set[int]:
    """Where a chat reply ends: the tokenizer's and the model's end tokens, and the chat template's end of turn."""
    return {tokenizer.eos_token_id, *eos_ids(model), *end_of_turn_ids(tokenizer)} - {None}


def shared_prefix(prompts: list[str]) -> str:
    """The prompts' common start, cut before its last blank line.

    A blank line before "Question:" splits into the same tokens whether or not the text is cut there,
    so prefix and rest tokenize exactly as the whole prompt does.
    """
    common = os.path.commonprefix(prompts)
    cut = common.rfind("\n\n")
    return common[:cut] if cut > 0 else ""
