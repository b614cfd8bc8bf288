"""Draft Q&A pairs from a document (txt, md, pdf, docx), for a person to review before any training.

An expert often has a manual, not a table of questions. `studio.data.documents` reads the document and cuts it
into passages along its headings and paragraphs; this module asks a model, local or behind an OpenAI-compatible
endpoint, to write a few question/answer pairs per passage in a strict "Q: ... / A: ..." form. Small models break
the form, so parsing is lenient and every draft that cannot be used is counted, never silently lost. Nothing here
trains: the drafts go to a CSV the person edits first.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studio.data import DocumentError

SYSTEM = "You write question and answer pairs that test whether a reader knows the facts in a passage."
PROMPT = (
    "Write {n} question and answer pairs about the passage below. Each question must be answerable from the "
    "passage alone; each answer must be short and use only facts stated in the passage. Write nothing else, "
    "exactly in this format:\n\nQ: <question>\nA: <answer>\n\nPassage:\n\"\"\"\n{passage}\n\"\"\""
)
_Q = re.compile(r"^[\s*#>_-]*(?:\d+\s*[.)]\s*)?(?:\*\*)?(?:q|question)\s*\d*\s*(?:\*\*)?\s*[:.)]\s*(?:\*\*)?", re.I)
_A = re.compile(r"^[\s*#>_-]*(?:\*\*)?(?:a|answer)\s*\d*\s*(?:\*\*)?\s*[:.)]\s*(?:\*\*)?", re.I)
_PLACEHOLDERS = {"", "<question>", "<answer>", "...", "…"}


@dataclass
class DraftResult:
    pairs: list[dict[str, str]] = field(default_factory=list)  # {"question", "answer", "passage"}
    dropped: int = 0  # drafts that did not parse, were empty or repeated an earlier question
    messages: list[str] = field(default_factory=list)  # notes for the person reviewing, incl. a network failure


def parse_pairs(text: str) -> tuple[list[tuple[str, str]], int]:
    """(question, answer) pairs from a model's reply, and how many drafts in it could not be used.

    Lenient about the form small models actually write ("1. Q:", "**Question 2:**", answers over several lines);
    strict about content: a question without an answer, an empty side or a copied placeholder is a dropped draft.
    A reply with text but no recognisable pair at all counts as one dropped draft.
    """
    drafts: list[dict[str, str | None]] = []  # {"q": question, "a": answer, None until an answer line}
    target = None  # which side a continuation line extends
    for line in text.replace("\r\n", "\n").split("\n"):
        if q := _Q.match(line):
            drafts.append({"q": line[q.end():], "a": None})
            target = "q"
        elif a := _A.match(line):
            if not drafts or drafts[-1]["a"] is not None:
                drafts.append({"q": "", "a": None})  # an answer with no question of its own: dropped below
            drafts[-1]["a"] = line[a.end():]
            target = "a"
        elif target and line.strip():
            drafts[-1][target] = f"{drafts[-1][target]} {line.strip()}"
    pairs, dropped = [], 0
    for draft in drafts:
        question, answer = _clean(draft["q"] or ""), _clean(draft["a"] or "")
        if question.lower() in _PLACEHOLDERS or answer.lower() in _PLACEHOLDERS:
            dropped += 1
        else:
            pairs.append((question, answer))
    if not drafts and text.strip():
        dropped = 1
    return pairs, dropped


def _clean(value: str) -> str:
    return value.strip().strip("*_\"' ").strip()


def draft_pairs(
    passages: list[str],
    model: str = "default",
    endpoint: str | None = None,
    api_key: str | None = None,
    per_passage: int = 3,
    max_new_tokens: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> DraftResult:
    """Ask a model for `per_passage` Q&A pairs about each passage; return the usable ones for review.

    `model` is 'default', a local model folder or a hub id, run here; or, with `endpoint` (an OpenAI-compatible
    chat-completions URL), the model name sent to that server. A network failure stops drafting with a plain
    message in `messages`, keeping the pairs drafted so far. `progress(done, total)` is called as passages are
    drafted, for a progress bar.
    """
    result = DraftResult()
    prompts = [PROMPT.format(n=per_passage, passage=p) for p in passages]
    if endpoint:
        replies = []
        for prompt in prompts:
            try:
                replies.append(ask_endpoint(endpoint, model, prompt, api_key, max_new_tokens))
            except DocumentError as exc:
                result.messages.append(str(exc))
                break
            if progress:
                progress(len(replies), len(prompts))
    else:
        from studio.chat import get_chat_model

        chat = get_chat_model(None, base=model)
        replies = []
        for start in range(0, len(prompts), 4):  # one batch of 4 at a time, so progress can be reported
            replies += chat.generate_batch(prompts[start:start + 4], tuned=False, max_new_tokens=max_new_tokens,
                                           system_prompt=SYSTEM, batch_size=4)
            if progress:
                progress(len(replies), len(prompts))
    seen: set[str] = set()
    for passage, reply in zip(passages, replies, strict=False):  # fewer replies after a network failure
        pairs, dropped = parse_pairs(reply)
        result.dropped += dropped
        kept = 0
        for question, answer in pairs:
            key = re.sub(r"\W+", " ", question.lower()).strip()
            if key in seen:
                result.dropped += 1
                continue
            if kept == per_passage:
                break  # more than asked for: the extra ones are not drafts we requested
            seen.add(key)
            kept += 1
            result.pairs.append({"question": question, "answer": answer, "passage": passage})
    if result.dropped:
        result.messages.append(f"{result.dropped} draft{'s' * (result.dropped != 1)} could not be used (no answer, "
                               "empty, not in the Q:/A: form, or a repeated question) and were left out.")
    if len(replies) < len(passages) and replies:
        result.messages.append(f"Only {len(replies)} of {len(passages)} passages were drafted.")
    return result


def ask_endpoint(endpoint: str, model: str, prompt: str, api_key: str | None, max_new_tokens: int,
                 system: str = SYSTEM, temperature: float = 0.2) -> str:
    """One chat completion from an OpenAI-compatible server, with urllib (no client library needed).

    Document drafting and question rewrites (augment.endpoint_paraphrases) both ask through it."""
    url = endpoint.rstrip("/")
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"  # a base URL such as http://localhost:8000/v1 is accepted too
    body = json.dumps({"model": model, "max_tokens": max_new_tokens, "temperature": temperature,
                       "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}]})
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - the user's own endpoint
            data = json.loads(response.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:200].strip()
        hint = " Check the API key." if exc.code in (401, 403) else " Check the URL and the model name."
        raise DocumentError(f"The endpoint {url} answered HTTP {exc.code}: {detail or exc.reason}.{hint}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DocumentError(f"Could not reach the endpoint {url} ({reason}). Check the URL and that the server is "
                            "running, or leave the endpoint empty to use a local model.") from None
    except json.JSONDecodeError:
        raise DocumentError(f"The endpoint {url} did not answer with JSON; is it an OpenAI-compatible "
                            "/v1/chat/completions URL?") from None
    try:
        return str(data["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        raise DocumentError(f"The endpoint {url} answered, but not with an OpenAI-style chat completion "
                            "(no choices[0].message.content).") from None


def write_pairs_csv(pairs: list[dict[str, str]], path: str | Path) -> None:
    """question,answer only: a 'passage' column would be read back as context by studio.data and train on it."""
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answer"])
        writer.writerows([p["question"], p["answer"]] for p in pairs)
