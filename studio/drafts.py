"""The examples drafted before a run trains: question rewrites, question forms, general answers kept.

Each is written to the run folder (`data/paraphrases.jsonl`, `data/question_forms.jsonl`, `data/replay.jsonl`) so
a resumed run trains on the same, and the model-drafted ones are also kept under STUDIO_HOME/drafts by everything
they depend on, so the next run on the same data and settings (the usual way to try another learning rate)
starts training at once. Drafting says how far it is and how long is left, and a Stop ends it before any training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.augment import DRAFT_VERSION, REWRITE_SYSTEM, endpoint_paraphrases, paraphrase_examples, replay_examples
from studio.data import Example
from studio.docqa import DocumentError, ask_endpoint
from studio.paths import ASSETS, studio_home
from studio.progress import stop_requested
from studio.question_forms import held_out_forms, normalise, question_form_examples
from studio.recipe import Recipe
from studio.runs import TrainingFailed


class StoppedWhileDrafting(Exception):
    """Stop was asked for before the first step: nothing is trained yet and no draft is half-kept."""


def read_examples(path: Path) -> list:
    """The examples a data/*.jsonl file of the run folder lists (train, eval, drafts, question forms)."""
    return [Example(r["messages"], r.get("row", 0)) for r in runs.read_jsonl(path)]


def write_examples(path: Path, examples) -> None:
    """`examples` as data/*.jsonl lines, written beside `path` and renamed in, never half-written."""
    text = "".join(json.dumps({"messages": e.messages, "row": e.row}, ensure_ascii=False) + "\n"
                   for e in examples)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: a data-parallel run's read it too
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _drafted_once(run_dir: Path, name: str, draft: Callable[[Callable[[int, int], None]], list],
                  say: Callable[[str], None], doing: str, done: str, key: dict, reused: str,
                  stop_event: threading.Event | None = None) -> list:
    """Examples the base model drafts before training, kept in data/`name` so a resumed run trains on the same.

    `doing` goes to the log and the status while it drafts, and the status adds how far it is and about
    how long is left after each batch (drafting takes a minute on a CPU without bf16); a Stop asked for
    meanwhile ends it there (StoppedWhileDrafting). `done` is formatted with {n} and {seconds}, `reused`
    with {n}.
    Drafts are also kept under STUDIO_HOME/drafts by `key` (everything they depend on), so the next run
    on the same data and settings, the usual way to try another learning rate, starts at once.
    """
    path = run_dir / "data" / name
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
    cached = studio_home() / "drafts" / f"{digest}.jsonl"
    if not path.exists() and cached.exists():
        try:
            shutil.copyfile(cached, path)
            cached.touch()  # used again: newest for pruning
        except OSError:
            path.unlink(missing_ok=True)  # pruned meanwhile, or unreadable: draft afresh
        else:
            extra = read_examples(path)
            say(reused.format(n=len(extra)))
            return extra
    if path.exists():
        return read_examples(path)
    started = time.time()
    say(doing)
    runs.write_status(run_dir, "queued", doing, phase="drafting")

    def progress(finished: int, total: int) -> None:
        if stop_requested(run_dir, stop_event):
            raise StoppedWhileDrafting
        left = (time.time() - started) / max(finished, 1) * (total - finished)
        message = f"{doing.rstrip('.')}: {finished} of {total} done, about {left:.0f} s left."
        runs.write_status(run_dir, "queued", message)

    extra = draft(progress)
    for target in (path, cached):
        try:
            write_examples(target, extra)
        except OSError:
            if target == path:
                raise  # the run's own copy is needed; the shared one is only a shortcut
    say(done.format(n=len(extra), seconds=time.time() - started))
    try:  # the newest few hundred are the ones a rerun can want; another run may be pruning too
        kept = sorted(cached.parent.glob("*.jsonl"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in kept[DRAFTS_KEPT:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
    return extra


DRAFTS_KEPT = 300  # shared drafts kept in STUDIO_HOME/drafts, newest first (tens of KB each)


def _draft_key(kind: str, recipe: Recipe, model, **inputs) -> dict:
    """What a draft depends on: the base model's weights, their precision, the drafting code and its inputs."""
    base = recipe.model.base
    files = sorted(Path(base).glob("*")) if Path(base).is_dir() else []
    weights = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files if f.is_file()]
    param = next(model.parameters())
    return {"kind": kind, "version": DRAFT_VERSION, "base": base, "files": weights, "dtype": str(param.dtype),
            "device": param.device.type, **inputs}


def paraphrases(run_dir: Path, model, tokenizer, examples, recipe: Recipe, say: Callable[[str], None],
                 stop_event: threading.Event | None = None) -> list:
    """Question rewrites by the base model (augment.paraphrase_examples) or by data.rewrite_endpoint's model."""
    n = recipe.data.paraphrases
    if recipe.data.rewrite_endpoint.strip():
        return _endpoint_paraphrases(run_dir, examples, recipe, say, stop_event)
    key = _draft_key("paraphrases", recipe, model, n=n, seed=recipe.training.seed,
                     examples=[e.messages for e in examples])
    return _drafted_once(
        run_dir, "paraphrases.jsonl",
        lambda progress: paraphrase_examples(model, tokenizer, examples, n, seed=recipe.training.seed,
                                             progress=progress), say,
        f"Drafting {n} rewrites of each question with the base model (once: later runs on the same data reuse them)...",
        "Added {n} rewritten questions in {seconds:.0f} s.", key,
        "Reused {n} rewritten questions drafted for an earlier run on the same data and settings.", stop_event)


def _endpoint_paraphrases(run_dir: Path, examples, recipe: Recipe, say: Callable[[str], None],
                          stop_event: threading.Event | None = None) -> list:
    """Question rewrites by a larger model behind an OpenAI-compatible endpoint (augment.endpoint_paraphrases).

    The API key comes from the environment, so it is in no recipe, log or cache key; a server that cannot
    be reached fails the run before its first step with the endpoint's own complaint."""
    n, endpoint, name = recipe.data.paraphrases, recipe.data.rewrite_endpoint.strip(), recipe.data.rewrite_model.strip()
    api_key = os.environ.get("STUDIO_REWRITE_API_KEY") or None

    def ask(prompt: str) -> str:
        return ask_endpoint(endpoint, name, prompt, api_key, 400, system=REWRITE_SYSTEM, temperature=0.8)

    def draft(progress):
        try:
            return endpoint_paraphrases(ask, examples, n, progress=progress)
        except DocumentError as exc:
            raise TrainingFailed(f"data.rewrite_endpoint: {exc}") from None

    key = {"kind": "paraphrases", "version": DRAFT_VERSION, "endpoint": endpoint, "model": name, "n": n,
           "seed": recipe.training.seed, "examples": [e.messages for e in examples]}
    return _drafted_once(
        run_dir, "paraphrases.jsonl", draft, say,
        f"Asking {name} at {endpoint} for {n} rewrites of each question (once: later runs on the same data reuse "
        "them)...",
        "Added {n} rewritten questions in {seconds:.0f} s.", key,
        "Reused {n} rewritten questions " + f"{name} wrote for an earlier run on the same data and settings.",
        stop_event)


def question_forms(run_dir: Path, examples, rewrites, recipe: Recipe, say: Callable[[str], None]) -> list:
    """Rule-based rewordings of each question (studio.question_forms), listed in data/question_forms.jsonl."""
    path = run_dir / "data" / "question_forms.jsonl"
    if path.exists():  # a resumed run trains on what it started with
        return read_examples(path)
    forms = question_form_examples(examples, recipe.data.question_forms, recipe.training.seed,
                                   taken={normalise(e.question) for e in rewrites})
    write_examples(path, forms)
    say(f"Added {len(forms)} rewordings of the questions in other question forms.")
    return forms


def held_out_rewordings(run_dir: Path, examples, rewrites, recipe: Recipe, say: Callable[[str], None]) -> list:
    """A rewording of each question that no training example asks (studio.question_forms.held_out_forms), listed in
    data/reworded.jsonl: the held-out check of a run whose upload was too small to hold questions out."""
    path = run_dir / "data" / "reworded.jsonl"
    if path.exists():
        return read_examples(path)
    forms = held_out_forms(examples, recipe.training.seed, taken={normalise(e.question) for e in rewrites})
    write_examples(path, forms)
    say(f"Kept {len(forms)} rewordings of your questions out of training, to check the tuned model on questions "
        "asked in other words.")
    return forms


def replay(run_dir: Path, model, tokenizer, recipe: Recipe, say: Callable[[str], None],
            stop_event: threading.Event | None = None) -> list:
    """The base model's own answers to general questions (augment.replay_examples)."""
    prompts = [r["prompt"] for r in runs.read_jsonl(ASSETS / "replay_prompts.jsonl") if r.get("prompt")]
    prompts = list(dict.fromkeys(prompts))[:recipe.data.replay]
    key = _draft_key("replay", recipe, model, prompts=prompts, system_prompt=recipe.data.system_prompt)
    return _drafted_once(
        run_dir, "replay.jsonl",
        lambda progress: replay_examples(model, tokenizer, prompts, recipe.data.system_prompt, progress=progress), say,
        f"Answering {len(prompts)} general questions with the base model, to keep its general answers...",
        "Kept {n} general answers in {seconds:.0f} s.", key,
        "Reused the base model's {n} answers to general questions from an earlier run with the same settings.",
        stop_event)
