"""Examples as the model sees them: the chat template's tokens, with a mask that trains on the answers only.

The tokenizer is passed in rather than loaded here, so reading and checking data never imports torch.
"""

from __future__ import annotations

import itertools

from studio.data.qa import Example, Problem


def _chat(example: Example, system_prompt: str) -> list[dict[str, str]]:
    messages = [dict(m) for m in example.messages]
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _ids(tokenizer, messages: list[dict[str, str]], generation_prompt: bool = False) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def template_problem(tokenizer, example: Example, system_prompt: str = "") -> str | None:
    """Why this model's chat template cannot render the data, in plain words, or None. Some templates refuse a
    system turn (older Mistral and Gemma ones) or anything but strictly alternating turns: said before training,
    with the fix, instead of a template error from deep inside the first step."""
    try:
        tokenize_example(tokenizer, example, system_prompt, max_length=1 << 20)
    except Exception as exc:  # noqa: BLE001 - jinja2's errors, raised by the template's own `raise_exception`
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fix = ("Clear data.system_prompt (the System prompt field): this template takes none." if system_prompt
               else "Use a chat (instruct) version of this model, or a model whose template takes plain turns.")
        return f"This model's chat template refuses the training examples ({first[:200]}). {fix}"
    return None


def tokenize_example(tokenizer, example: Example, system_prompt: str = "", max_length: int = 512) -> dict:
    """Token ids plus a mask that is 1 on each assistant turn and its end-of-turn tokens, 0 on everything else.

    Training on prompts too would teach the model to write questions; the mask keeps the loss on the answers.
    """
    messages = _chat(example, system_prompt)
    ids = _ids(tokenizer, messages)
    mask = [0] * len(ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # For ChatML-style templates both renders tokenise to exact prefixes of `ids`; where a template merges
        # tokens across the boundary, the token counts are still the best alignment available.
        start = len(_ids(tokenizer, messages[:i], generation_prompt=True))
        end = len(_ids(tokenizer, messages[: i + 1]))
        mask[start:end] = [1] * len(mask[start:end])
    truncated = len(ids) > max_length
    ids, mask = ids[:max_length], mask[:max_length]
    return {"input_ids": ids, "completion_mask": mask, "truncated": truncated or not any(mask)}


def render_example(tokenizer, example: Example, system_prompt: str = "", max_length: int = 512
                   ) -> list[tuple[str, bool]]:
    """The text the model sees, in runs of (text, trained), so a preview can grey out what is not learned."""
    tokens = tokenize_example(tokenizer, example, system_prompt, max_length)
    pairs = zip(tokens["input_ids"], tokens["completion_mask"], strict=False)
    return [(tokenizer.decode([t for t, _ in run], skip_special_tokens=False), bool(flag))
            for flag, run in itertools.groupby(pairs, key=lambda p: p[1])]


def token_lengths(tokenizer, examples: list[Example], system_prompt: str = "") -> list[int]:
    return [len(_ids(tokenizer, _chat(e, system_prompt))) for e in examples]


def shared_prefix_length(tokenizer, system_prompt: str = "") -> int:
    """Tokens every example starts with (the chat template's system turn and the user turn's header).

    CPU training computes them once per packed row (packed_attention.SharedPrefixCollator); the time
    estimate counts them so.
    """
    a, b = (_ids(tokenizer, _chat(Example([{"role": "user", "content": text}], 0), system_prompt))
            for text in ("Who?", "Where is it?"))
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def length_problems(tokenizer, examples: list[Example], system_prompt: str, max_length: int) -> list[Problem]:
    """One warning per example that max_length would cut (the first 10 by name), so nobody trains on half answers."""
    lengths = token_lengths(tokenizer, examples, system_prompt)
    long = [(e, n) for e, n in zip(examples, lengths, strict=True) if n > max_length]
    problems = []
    for example, n in long[:10]:
        kept = tokenize_example(tokenizer, example, system_prompt, max_length)["completion_mask"]
        what = "its question alone fills it, so nothing is learned from it" if not any(kept) else "the end is cut off"
        problems.append(Problem("warning", f"Row {example.row} is {n} tokens, more than data.max_length "
                                f"({max_length}); {what}. Raise data.max_length or shorten row {example.row}.",
                                example.row))
    if len(long) > 10:
        problems.append(Problem("warning", f"{len(long) - 10} more rows are longer than data.max_length "
                                f"({max_length}). Raise data.max_length or shorten them."))
    return problems


def end_of_turn_ids(tokenizer) -> list[int]:
    """The special token the chat template closes an answer with: ChatML's <|im_end|>, Gemma's <end_of_turn>,
    Phi-3's <|end|>, Llama 3's <|eot_id|>, Mistral's </s>.

    Generation must stop there even where the model's own config names another end (a base model given
    Studio's ChatML template, a family whose eos is <|endoftext|>), or a tuned reply runs on into a made-up turn.
    """
    mark = "Zq7"
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": mark}],
                                             tokenize=False)
    except Exception:  # noqa: BLE001 - a template that cannot render this has no end to find
        return []
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    for token in tokenizer(text[text.rfind(mark) + len(mark):], add_special_tokens=False)["input_ids"]:
        if token in special:
            return [token]
        if tokenizer.decode([token]).strip():
            return []  # text after the answer before any special token: no end-of-turn token to stop at
    return []
