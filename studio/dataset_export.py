"""Write checked examples back out in the two formats other tools read: OpenAI chat JSONL and Alpaca JSON.

The examples come from `load_data`, so what leaves Studio is exactly what it would train on: rows it
reported as unusable are not exported either. Both writers add `system_prompt` to examples that have no
system turn, the same rule training applies, so an exported file trains the same elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from studio.data import Example


def _messages(example: Example, system_prompt: str) -> list[dict[str, str]]:
    messages = [{"role": m["role"], "content": m["content"]} for m in example.messages]
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _write_atomic(out: Path, text: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)


def export_openai_jsonl(examples: list[Example], out: Path, system_prompt: str = "") -> int:
    """One `{"messages": [...]}` per line (OpenAI's fine-tuning chat format); returns the lines written.

    Multi-turn conversations stay whole: the format holds them natively.
    """
    lines = [json.dumps({"messages": _messages(e, system_prompt)}, ensure_ascii=False) + "\n" for e in examples]
    _write_atomic(Path(out), "".join(lines))
    return len(lines)


def _transcript(messages: list[dict[str, str]]) -> str:
    return "\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in messages)


def to_alpaca(example: Example, system_prompt: str = "") -> dict[str, str]:
    """{instruction, input, output[, system]} for one example.

    Alpaca holds one question and one answer. A multi-turn conversation keeps its last question as the
    instruction and its last answer as the output; the earlier turns go into `input` as a "User: ... /
    Assistant: ..." transcript, so nothing the answer depends on is lost. `system` (LLaMA-Factory's and
    Studio's extension of the format) is written only when there is one.
    """
    messages = _messages(example, system_prompt)
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    talk = [m for m in messages if m["role"] != "system"]
    last_user = max(i for i, m in enumerate(talk) if m["role"] == "user")
    row = {"instruction": talk[last_user]["content"], "input": _transcript(talk[:last_user]),
           "output": "\n".join(m["content"] for m in talk[last_user + 1:])}
    if system:
        row["system"] = system
    return row


def export_alpaca_json(examples: list[Example], out: Path, system_prompt: str = "") -> int:
    """A JSON list of Alpaca rows (see `to_alpaca` for multi-turn); returns how many were written."""
    rows = [to_alpaca(e, system_prompt) for e in examples]
    _write_atomic(Path(out), json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    return len(rows)
