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

import re
from collections.abc import Callable

import torch

from studio.data import Example
from studio.kernels.complete import complete, generating, stop_ids
from studio.question_forms import normalise as _norm

# Bumped whenever drafting changes what it writes: drafts kept for reuse (studio.drafts) are keyed by it.
DRAFT_VERSION = 5

FEW_SHOT = (
    "Rewrite each question with different words but the same meaning.\n\n"
    "Question: What time does the museum open on Sundays?\nRewrite: When do the museum's doors open on a Sunday?\n\n"
    "Question: Who designed the new library building?\nRewrite: Which architect was behind the new library?\n\n"
    "Question: How much does a monthly bus pass cost?\nRewrite: What is the price of a bus pass for one month?\n\n"
    "Question: {question}\nRewrite:"
)


def _names(text: str) -> set[str]:
    """Capitalised words after the first and numbers: the parts a rewrite must keep to ask the same thing."""
    words = re.findall(r"[A-Za-z][\w'-]*|\d[\d.,:]*", text)
    return {w.lower() for w in words[1:] if w[0].isupper() or w[0].isdigit()}


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,:]\d+)*", text))


# What a question asks for, by its question word near the start. The base model's rewrites drift: "What time
# does the Saltwren leave?" came back as "How far is Hestrel Point?" and "How long is the journey?", which,
# trained with the 6:40 answer, teach the model to answer a distance or a duration question with a time.
_ASKS = [(r"\b(?:in )?(?:what|which) year\b|\bwhat time\b|\bat what (?:time|hour)\b|\bwhen\b", "time"),
         (r"\bhow long\b", "duration"), (r"\bhow many\b", "count"), (r"\bhow much\b", "amount"),
         (r"\bhow far\b", "distance"), (r"\bhow (?:do|does|did|can|is|are)\b", "manner"), (r"\bwhy\b", "reason"),
         (r"\bwho(?:m|se)?\b", "person"), (r"\bwhere\b", "place")]
_COMPATIBLE = {"amount": {"count"}, "count": {"amount"}}  # "how much" and "how many" overlap in use


def asks_for(question: str) -> str:
    """The kind of answer a question wants ("time", "person", "amount", ..., "yes/no"); "what" when it could be any."""
    text = question.lower().strip()
    for pattern, kind in _ASKS:
        found = re.search(pattern, text)
        if found and found.start() < 25:
            return kind
    return "yes/no" if re.match(r"(?:can|is|are|do|does|may|will|could|should|am)\b", text) else "what"


def keep_rewrite(rewrite: str, question: str, seen: set[str], answer: str = "") -> bool:
    """A usable rewrite: a question of sensible length, asking for the same kind of thing, that keeps the names
    and invents no number."""
    if _numbers(rewrite) - _numbers(question) - _numbers(answer):
        return False  # "When was it founded in 1899?": a made-up figure would teach a second, wrong fact
    wanted, asked = asks_for(question), asks_for(rewrite)
    if not (asked == wanted or asked in _COMPATIBLE.get(wanted, ()) or (asked == "what" and wanted != "yes/no")):
        # A time question rewritten as a distance question would teach the time as a distance. A "what" question
        # may stay a "what" question, but is not narrowed to one kind: of 14 such drafts on bench/learn.py's data
        # one was right ("How much luggage ...?") and the rest asked something else ("What is the name of
        # Brindlewick's overnight ferry?" -> "Who are Brindlewick's overnight ferry operators?"). A yes/no
        # question stays one.
        return False
    if not rewrite.endswith("?") or _norm(rewrite) in seen or _norm(rewrite) == _norm(question):
        return False
    if not 0.4 * len(question) <= len(rewrite) <= 2.0 * len(question):
        return False
    names = _names(question)
    return not names or len(names & _names(rewrite) | names & set(_norm(rewrite).split())) >= max(1, len(names) // 2)


def _draft(model, tokenizer, prompts: list[str], samples: int, max_new_tokens: int, temperature: float = 0.8,
           top_p: float = 0.95, top_k: int = 1024) -> list[list[str]]:
    """`samples` sampled one-line completions of each prompt."""
    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("\n")} - {None}
    out, _ = complete(model, tokenizer, prompts, samples, max_new_tokens, stop, temperature, top_p, top_k)
    texts = [t.strip().split("\n")[0].strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
    return [texts[i * samples:(i + 1) * samples] for i in range(len(prompts))]


def _kept(example: Example, texts: list[str], taken: set[str], per_question: int) -> list[Example]:
    """Up to `per_question` of `texts` that pass keep_rewrite, as copies of `example` asked that way.

    `taken` holds every original question: a rewrite that lands on another fact's question would teach
    two answers to one question."""
    seen: set[str] = set()
    out: list[Example] = []
    for text in texts:
        if len(seen) < per_question and _norm(text) not in taken and keep_rewrite(
                text, example.question, seen, example.answer):
            seen.add(_norm(text))
            out.append(Example([{"role": "user", "content": text}, example.messages[1]], example.row))
    return out


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
    taken = {_norm(e.question) for e in examples}
    out: list[Example] = []
    with generating(model, tokenizer):
        for i in range(0, len(single), batch_size):
            chunk = single[i:i + batch_size]
            rewrites = _draft(model, tokenizer, [FEW_SHOT.format(question=e.question) for e in chunk], samples,
                              max_new_tokens)
            for example, texts in zip(chunk, rewrites, strict=True):
                out += _kept(example, texts, taken, per_question)
            if progress is not None:
                progress(i + len(chunk), len(single))
    return out


REWRITE_SYSTEM = "You rewrite questions so that they ask for exactly the same fact in other words."
REWRITE_PROMPT = (
    "Write {n} different ways a person might ask this question. Each must ask for exactly the same fact. Keep "
    "every name and number; change the other words and the sentence structure (synonyms, another question "
    "word, another order). One question per line, nothing else.\n\nQuestion: {question}"
)


def _listed(reply: str) -> list[str]:
    """The lines of a reply without their numbering, bullets or quotes."""
    lines = (re.sub(r"^\s*(?:[-*\u2022]|\(?\d+[.):])\s*", "", line).strip().strip('"\u201c\u201d').strip()
             for line in reply.splitlines())
    return [line for line in lines if line]


def endpoint_paraphrases(ask: Callable[[str], str], examples: list[Example], per_question: int, workers: int = 4,
                         progress: Callable[[int, int], None] | None = None) -> list[Example]:
    """paraphrase_examples' rewrites, written by a larger model behind `ask(prompt) -> reply`.

    The 135M default writes loose rewrites (about a quarter ask something else); a model a few billion
    parameters large writes ones a person would. One request per question, `workers` at a time; the same
    checks as the base model's drafts apply. `progress` as in paraphrase_examples.
    """
    from concurrent.futures import ThreadPoolExecutor

    single = [e for e in examples if len(e.messages) == 2 and e.messages[0]["role"] == "user"]
    if per_question <= 0 or not single:
        return []
    taken = {_norm(e.question) for e in examples}
    prompts = [REWRITE_PROMPT.format(n=per_question + 2, question=e.question) for e in single]  # spares
    out: list[Example] = []
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for done, (example, reply) in enumerate(zip(single, pool.map(ask, prompts), strict=True), 1):
            out += _kept(example, _listed(reply), taken, per_question)
            if progress is not None:
                progress(done, len(single))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a Stop or a failed request leaves the rest unasked
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
    stop = stop_ids(model, tokenizer)
    with generating(model, tokenizer):
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            chats = [([{"role": "system", "content": system_prompt}] if system_prompt else [])
                     + [{"role": "user", "content": p}] for p in chunk]
            texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
            gen, stopped = complete(model, tokenizer, texts, 1, max_new_tokens, stop)  # greedy
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
