"""Question rewrites drafted by the base model, so a small fact set teaches facts rather than phrasings.

A model tuned on one wording per fact answers that wording and little else; users ask in their own
words. Before training, the base model rewrites each question a few times from a short few-shot prompt
(plain completion: small models follow examples better than instructions). Rewrites that are not
questions, repeat the original, lose its names, or run long are dropped. Each kept rewrite becomes one
more training example with the original answer; they are written to `data/paraphrases.jsonl` so the
user can see exactly what was added.
"""

from __future__ import annotations

import re

import torch

from studio.data import Example

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


def keep_rewrite(rewrite: str, question: str, seen: set[str]) -> bool:
    if not rewrite.endswith("?") or _norm(rewrite) in seen or _norm(rewrite) == _norm(question):
        return False
    if not 0.4 * len(question) <= len(rewrite) <= 2.0 * len(question):
        return False
    names = _names(question)
    return not names or len(names & _names(rewrite) | names & set(_norm(rewrite).split())) >= max(1, len(names) // 2)


def paraphrase_examples(model, tokenizer, examples: list[Example], per_question: int, max_new_tokens: int = 32,
                        batch_size: int = 20, seed: int = 0) -> list[Example]:
    """Up to `per_question` rewritten copies of each single-turn example; multi-turn ones are left as they are."""
    single = [e for e in examples if len(e.messages) == 2 and e.messages[0]["role"] == "user"]
    if per_question <= 0 or not single:
        return []
    torch.manual_seed(seed)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    samples = per_question + 1  # one spare: some rewrites are dropped
    # A rewrite that lands on another fact's question would teach two answers to one question.
    taken = {_norm(e.question) for e in examples}
    out: list[Example] = []
    try:
        for i in range(0, len(single), batch_size):
            chunk = single[i:i + batch_size]
            enc = tokenizer([FEW_SHOT.format(question=e.question) for e in chunk], return_tensors="pt",
                            padding=True, add_special_tokens=False)
            with torch.inference_mode():
                gen = model.generate(**enc, do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=max_new_tokens,
                                     num_return_sequences=samples, pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.convert_tokens_to_ids("\n") or tokenizer.eos_token_id)
            texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for j, example in enumerate(chunk):
                seen: set[str] = set()
                for text in texts[j * samples:(j + 1) * samples]:
                    rewrite = text.strip().split("\n")[0].strip()
                    if len(seen) < per_question and _norm(rewrite) not in taken and keep_rewrite(
                            rewrite, example.question, seen):
                        seen.add(_norm(rewrite))
                        out.append(Example([{"role": "user", "content": rewrite}, example.messages[1]], example.row))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out
