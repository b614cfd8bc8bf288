"""Extra training examples drafted by the base model for small fact sets: question rewrites and replay.

A model tuned on one wording per fact answers that wording and little else; users ask in their own
words. Before training, the base model rewrites each question a few times from a short few-shot prompt
(plain completion: small models follow examples better than instructions). Rewrites that are not
questions, repeat the original, lose its names, invent a number or run long are dropped. Each kept
rewrite becomes one more training example with the original answer; they are written to
`data/paraphrases.jsonl` so the user can see exactly what was added.

Replay is the other half: the base model's own answers to general questions, trained on alongside
the facts so that the many passes a small set needs do not drag every answer towards it
(`data/replay.jsonl`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import contextmanager

import torch
from transformers.cache_utils import DynamicLayer

from studio.data import Example

# Bumped whenever drafting changes what it writes: drafts kept for reuse (train._drafted_once) are keyed by it.
DRAFT_VERSION = 4

FEW_SHOT = (
    "Rewrite each question with different words but the same meaning.\n\n"
    "Question: What time does the museum open on Sundays?\nRewrite: When do the museum's doors open on a Sunday?\n\n"
    "Question: Who designed the new library building?\nRewrite: Which architect was behind the new library?\n\n"
    "Question: How much does a monthly bus pass cost?\nRewrite: What is the price of a bus pass for one month?\n\n"
    "Question: {question}\nRewrite:"
)


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _names(text: str) -> set[str]:
    """Capitalised words after the first and numbers: the parts a rewrite must keep to ask the same thing."""
    words = re.findall(r"[A-Za-z][\w'-]*|\d[\d.,:]*", text)
    return {w.lower() for w in words[1:] if w[0].isupper() or w[0].isdigit()}


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,:]\d+)*", text))


def keep_rewrite(rewrite: str, question: str, seen: set[str], answer: str = "") -> bool:
    """A usable rewrite: a question of sensible length that keeps the names and invents no number."""
    if _numbers(rewrite) - _numbers(question) - _numbers(answer):
        return False  # "When was it founded in 1899?": a made-up figure would teach a second, wrong fact
    if not rewrite.endswith("?") or _norm(rewrite) in seen or _norm(rewrite) == _norm(question):
        return False
    if not 0.4 * len(question) <= len(rewrite) <= 2.0 * len(question):
        return False
    names = _names(question)
    return not names or len(names & _names(rewrite) | names & set(_norm(rewrite).split())) >= max(1, len(names) // 2)


@contextmanager
def _generating(model, tokenizer):
    """Batched generation: left padding and eval mode, both handed back as they were."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        tokenizer.padding_side = side
        model.train(was_training)


def _draft(model, tokenizer, prompts: list[str], samples: int, max_new_tokens: int, temperature: float = 0.8,
           top_p: float = 0.95, top_k: int = 1024) -> list[list[str]]:
    """`samples` sampled one-line completions of each prompt."""
    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("\n")} - {None}
    out, _ = _complete(model, tokenizer, prompts, samples, max_new_tokens, stop, temperature, top_p, top_k)
    texts = [t.strip().split("\n")[0].strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
    return [texts[i * samples:(i + 1) * samples] for i in range(len(prompts))]


def _complete(model, tokenizer, prompts: list[str], samples: int, max_new_tokens: int, stop: set[int],
              temperature: float = 0.0, top_p: float = 1.0, top_k: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """`samples` completions of each prompt (greedy at temperature 0): ([rows, max_new_tokens] ids, stopped).

    A loop of its own rather than `generate`, for costs that dominated drafting on the CPU:
    - The prompts share the few-shot prefix, most of their tokens: it runs through the model once
      and its keys and values are copied to every row (`num_return_sequences` repeats the whole
      prompt before the prefill). Each row is [prefix | padding | its own question], the padding
      masked out and the positions counted past it.
    - `generate` samples over the whole 49k vocabulary of every row at every step (a sort, a cumsum,
      and one random draw per entry for `multinomial`, which is serial on the CPU): 15 of the 23 s of
      a 100-row batch. `_nucleus_sample` makes the same draw from the 1024 most likely tokens.
    - Rows that have finished leave the batch (in groups, each leaving copies the cache), and the
      cache has room for the new tokens instead of growing by a copy of itself every step.
    """
    prefix = _shared_prefix(prompts)
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
                cache.layers = [_RoomyLayer(layer, rows, ids.shape[1] + max_new_tokens) for layer in cache.layers]
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
            token = (_nucleus_sample(logits / temperature, top_p, top_k) if temperature > 0
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


class _RoomyLayer(DynamicLayer):
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


def _nucleus_sample(logits: torch.Tensor, top_p: float, top_k: int) -> torch.Tensor:
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


def _eos_ids(model) -> list[int]:
    """The end-of-turn ids `generate` stops at (the generation config may list several)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return [eos] if isinstance(eos, int) else list(eos or [])


def _shared_prefix(prompts: list[str]) -> str:
    """The prompts' common start, cut before its last blank line.

    A blank line before "Question:" splits into the same tokens whether or not the text is cut there,
    so prefix and rest tokenize exactly as the whole prompt does.
    """
    common = os.path.commonprefix(prompts)
    cut = common.rfind("\n\n")
    return common[:cut] if cut > 0 else ""


def paraphrase_examples(model, tokenizer, examples: list[Example], per_question: int, max_new_tokens: int = 32,
                        batch_size: int = 20, seed: int = 0,
                        progress: Callable[[int, int], None] | None = None) -> list[Example]:
    """Up to `per_question` rewritten copies of each single-turn example; multi-turn ones are left as they are.

    `progress(done, total)` is called after each batch of questions (it may raise to stop drafting).

    (Drafting questions from the answers as well, and rewriting the answers, measured no better in
    bench/learn.py and wrote more off-topic questions, so neither is done.)
    """
    single = [e for e in examples if len(e.messages) == 2 and e.messages[0]["role"] == "user"]
    if per_question <= 0 or not single:
        return []
    torch.manual_seed(seed)
    samples = per_question + 1  # one spare: some rewrites are dropped
    # A rewrite that lands on another fact's question would teach two answers to one question.
    taken = {_norm(e.question) for e in examples}
    out: list[Example] = []
    with _generating(model, tokenizer):
        for i in range(0, len(single), batch_size):
            chunk = single[i:i + batch_size]
            rewrites = _draft(model, tokenizer, [FEW_SHOT.format(question=e.question) for e in chunk], samples,
                              max_new_tokens)
            for example, texts in zip(chunk, rewrites, strict=True):
                seen: set[str] = set()
                for text in texts:
                    if len(seen) < per_question and _norm(text) not in taken and keep_rewrite(
                            text, example.question, seen, example.answer):
                        seen.add(_norm(text))
                        out.append(Example([{"role": "user", "content": text}, example.messages[1]], example.row))
            if progress is not None:
                progress(i + len(chunk), len(single))
    return out


def replay_examples(model, tokenizer, prompts: list[str], system_prompt: str = "", max_new_tokens: int = 64,
                    batch_size: int = 20, progress: Callable[[int, int], None] | None = None) -> list[Example]:
    """General questions answered by the base model itself, to mix into a small fact set.

    Many passes over a few dozen facts pull every answer towards them ("the capital of Japan is the
    Saltwren"). Training on the base model's own answers to unrelated questions as well costs a few
    examples and anchors its general behaviour where it was (self-distillation, a standard remedy for
    forgetting). Answers cut off by `max_new_tokens` are trimmed to their last full sentence.
    """
    if not prompts:
        return []
    out: list[Example] = []
    with _generating(model, tokenizer):
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            chats = [([{"role": "system", "content": system_prompt}] if system_prompt else [])
                     + [{"role": "user", "content": p}] for p in chunk]
            texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
            stop = {tokenizer.eos_token_id, *_eos_ids(model)} - {None}
            gen, stopped = _complete(model, tokenizer, texts, 1, max_new_tokens, stop)  # greedy
            for prompt, ids, finished in zip(chunk, gen, stopped.tolist(), strict=True):
                answer = tokenizer.decode(ids, skip_special_tokens=True).strip()
                if not finished:
                    cut = max(answer.rfind(". "), answer.rfind("! "), answer.rfind("? "), answer.rfind(".\n"))
                    answer = answer[:cut + 1].strip() if cut > 0 else ""
                if answer:
                    out.append(Example([{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                                       0))
            if progress is not None:
                progress(i + len(chunk), len(prompts))
    return out
