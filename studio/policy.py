"""Who may reach this studio and what each caller may ask of it: one policy for every way in.

A studio is in one of four modes, decided once at start from where it listens and whether it has a login:

- **local**: it listens on loopback (the default), or anywhere behind a login. Whoever reaches it is the
  machine's owner or someone they gave the password to, so every feature is on: server model folders,
  remote code, endpoints of their choice.
- **shared**: `STUDIO_SHARED=1`, or it listens beyond loopback without a login. Strangers may reach it, so
  a recipe may not touch the server's files, run code on it, or make it call addresses a visitor picks.
- **demo**: `STUDIO_DEMO=1`: shared, and read-only (no training, no pushing).
- **open**: beyond loopback without a login, with the explicit opt-in `--open-to-network`: every feature, for
  anyone who can reach the port. Printed loudly at start.

The UI events, the scripting API and the CLI call the same functions in `studio.service`,
and those call the checks here, so no way in can skip one. The caps on work (tokens, prompt size, waiting
for the model, body size) hold in every mode: one caller must never hold the model for everyone.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


class UserError(ValueError):
    """Something the user can fix; the message says what and how."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _number(name: str, default: float) -> float:
    """An env setting read as a number; a value that is not one is a start-up error naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number. Unset it, or give one: {name}={default:g}.") from None
    if value <= 0:
        raise UserError(f"{name}={raw!r} must be above 0.")
    return value


@dataclass(frozen=True)
class Limits:
    """What one caller may ask for, from the environment (read on each use, so tests and operators can set them)."""

    upload_bytes: int  # STUDIO_MAX_UPLOAD_MB: per file and per request body
    new_tokens: int  # STUDIO_MAX_NEW_TOKENS: per reply
    prompt_chars: int  # STUDIO_MAX_PROMPT_CHARS: per question; a whole conversation may hold 4x that
    wait_seconds: float  # STUDIO_MAX_WAIT_S: how long a request waits for the model before it is refused
    per_session: int  # STUDIO_MAX_PENDING: requests one browser session (or client) may have at the model at once
    eval_questions: int  # STUDIO_MAX_EVAL_QUESTIONS: questions in one uploaded evaluation file
    queued_runs: int  # STUDIO_MAX_QUEUE: runs that may wait in the queue behind the one training

    @property
    def conversation_chars(self) -> int:
        return 4 * self.prompt_chars


def limits() -> Limits:
    return Limits(
        upload_bytes=int(_number("STUDIO_MAX_UPLOAD_MB", 50) * 1024 * 1024),
        new_tokens=int(_number("STUDIO_MAX_NEW_TOKENS", 512)),
        prompt_chars=int(_number("STUDIO_MAX_PROMPT_CHARS", 4000)),
        wait_seconds=_number("STUDIO_MAX_WAIT_S", 120),
        per_session=int(_number("STUDIO_MAX_PENDING", 2)),
        eval_questions=int(_number("STUDIO_MAX_EVAL_QUESTIONS", 500)),
        queued_runs=int(_number("STUDIO_MAX_QUEUE", 10)),
    )


# ---- the mode --------------------------------------------------------------------------------------------------

_exposed = False  # set by `configure`: listening beyond loopback without a login and without the opt-in
_open = False  # beyond loopback without a login, opted in


def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


def configure(host: str, has_login: bool, open_to_network: bool = False) -> str:
    """Fix this process's mode from where it listens; returns the one line the start prints about it."""
    global _exposed, _open
    reachable = not is_loopback(host)
    _exposed = reachable and not has_login and not open_to_network
    _open = reachable and not has_login and open_to_network
    if demo_mode():
        return (f"Studio is a read-only demo on {host}: visitors chat with and evaluate finished runs; training, "
                "pushing, server folders, remote code and endpoints are off.")
    if _open:
        return (f"WARNING: Studio listens on {host} with NO login and every feature on (--open-to-network): anyone "
                "who reaches this port can read every run, load any folder of this machine as a model and run "
                "a model's own code on it. Set STUDIO_AUTH=user:password to require a login instead.")
    if shared_mode():
        why = "STUDIO_SHARED is set" if _flag("STUDIO_SHARED") else f"it listens on {host} without a login"
        return (f"Studio is a shared studio ({why}): server model folders, remote code and caller-chosen endpoints "
                "are off. Set STUDIO_AUTH=user:password to require a login and turn them back on for your users.")
    if reachable:
        return f"Studio listens on {host} behind a login (STUDIO_AUTH): every feature is on for those who log in."
    return f"Studio listens on {host} only (this machine): every feature is on."


def demo_mode() -> bool:
    """STUDIO_DEMO=1: a public read-only deployment where nobody can start training on the host's machine."""
    return _flag("STUDIO_DEMO")


def shared_mode() -> bool:
    """Strangers may reach this studio, so a recipe may not reach its files, run code on it or pick its requests."""
    return demo_mode() or _flag("STUDIO_SHARED") or _exposed


def mode() -> str:
    return "demo" if demo_mode() else "shared" if shared_mode() else "open" if _open else "local"


# ---- what a recipe may name ------------------------------------------------------------------------------------


def base_problem(base: str) -> str | None:
    """Why `model.base` may not be used here, or None: on a shared studio only 'default' and hub ids.

    The refusal is the same whether or not such a folder exists, so it tells a visitor nothing about the server.
    """
    base = (base or "").strip()
    if not shared_mode():
        return None
    from studio.models import is_default

    if is_default(base) or (_HUB_ID.match(base) and ".." not in base and not Path(base).expanduser().exists()):
        return None
    return (f"model.base: '{base[:80]}' is not allowed on a shared studio (local folders are off): use 'default' "
            "or a Hugging Face hub id such as 'Qwen/Qwen2.5-0.5B-Instruct'.")


def endpoint_problem(endpoint: str, field: str = "data.rewrite_endpoint") -> str | None:
    """Why this server may not call `endpoint` for a visitor, or None."""
    endpoint = (endpoint or "").strip()
    if not endpoint:
        return None
    if shared_mode():
        return (f"{field}: turned off on a shared studio (this server would send requests to any address a visitor "
                "gives it). Leave it empty to use the model here.")
    if not re.match(r"^https?://[^\s/]+", endpoint):
        return f"{field}: must be an http:// or https:// URL, e.g. http://localhost:11434/v1."
    return None


def recipe_problems(recipe) -> list[str]:
    """The recipe's settings this studio refuses: local model folders, remote code, endpoints, adapter folders."""
    if not shared_mode():
        return []
    problems = [p for p in (base_problem(recipe.model.base),) if p]
    if recipe.model.trust_remote_code:
        problems.append("model.trust_remote_code: turned off on a shared studio (it would run the model's own "
                        "Python code on this host).")
    problem = endpoint_problem(recipe.data.rewrite_endpoint)
    if problem:
        problems.append(problem)
    init = recipe.method.init_adapter.strip()
    if init and not (_HUB_ID.match(init) and "/" not in init and ".." not in init):
        problems.append(f"method.init_adapter: '{init[:80]}' is not a run id; on a shared studio give a run from "
                        "the list of runs, not a folder.")
    return problems


def refuse_in_demo(what: str) -> None:
    if demo_mode():
        raise UserError(f"This is a read-only demo: {what} is turned off. Run Studio on your own machine to train.")


# ---- the work one request may ask for --------------------------------------------------------------------------


def new_tokens(value, field: str = "max_new_tokens") -> int:
    """A reply length within this studio's cap, or a UserError saying the cap."""
    cap = limits().new_tokens
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{field}: give a whole number of tokens from 1 to {cap}.") from None
    if not 1 <= n <= cap:
        raise UserError(f"{field}: {n} is outside 1-{cap}, this studio's limit per reply (STUDIO_MAX_NEW_TOKENS).")
    return n


def temperature(value) -> float:
    try:
        t = float(value or 0)
    except (TypeError, ValueError):
        raise UserError("temperature: give a number from 0 to 2.") from None
    if not 0 <= t <= 2:
        raise UserError(f"temperature: {t:g} is outside 0-2.")
    return t


def prompt(text: str, history: list | None = None) -> str:
    """The question, checked against the size caps (the conversation it continues counts too)."""
    lim = limits()
    if not isinstance(text, str) or not text.strip():
        raise UserError("Type a question first.")
    if len(text) > lim.prompt_chars:
        raise UserError(f"The question is {len(text):,} characters long; this studio takes at most "
                        f"{lim.prompt_chars:,} (STUDIO_MAX_PROMPT_CHARS). Shorten it.")
    total = len(text) + sum(_chars(m.get("content") if isinstance(m, dict) else m) for m in history or [])
    if total > lim.conversation_chars:
        raise UserError(f"The conversation is {total:,} characters long; this studio keeps at most "
                        f"{lim.conversation_chars:,}. Press Clear and ask again.")
    return text


def _chars(content) -> int:
    """Characters of a chat message's content: text, or gradio's list of content blocks."""
    if isinstance(content, list):
        return sum(_chars(block.get("text", "") if isinstance(block, dict) else block) for block in content)
    return len(str(content or ""))


# ---- taking turns at the model ---------------------------------------------------------------------------------

caller: contextvars.ContextVar[str] = contextvars.ContextVar("studio_caller", default="local")


class ModelTurns:
    """One generation at a time on the shared weights, each request waiting a bounded time, and each caller
    (a browser session or an API client) holding at most `per_session` places, waiting or running.

    Without it one client could queue a hundred long requests and every other user would wait behind them.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._model = threading.Lock()
        self._held: dict[str, int] = {}

    @contextlib.contextmanager
    def turn(self, what: str = "this request") -> Iterator[None]:
        lim, who = limits(), caller.get()
        with self._lock:
            if self._held.get(who, 0) >= lim.per_session:
                raise UserError(f"You already have {self._held[who]} requests waiting for the model. Wait for them "
                                "to finish, then try again.")
            self._held[who] = self._held.get(who, 0) + 1
        try:
            started = time.monotonic()
            if not self._model.acquire(timeout=lim.wait_seconds):
                raise UserError(f"The model was busy with other requests for {time.monotonic() - started:.0f} s, so "
                                f"{what} was not started. Try again in a moment.")
            try:
                yield
            finally:
                self._model.release()
        finally:
            with self._lock:
                self._held[who] -= 1
                if not self._held[who]:
                    del self._held[who]


model_turns = ModelTurns()
