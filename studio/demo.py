"""The Space demo: one finished run baked into the image, so a visitor sees base vs tuned in the first seconds.

`bake_demo` trains the default recipe on the bundled sample (the fictional Brindlewick Ferry Company, seeded)
into `STUDIO_HOME/runs/demo-brindlewick`, then answers the bundled reworded questions (`assets/sample_eval.csv`)
with the base and the tuned model and keeps that as the run's evaluation. `demo_questions` gives the landing its
one-click examples: questions the run was taught and reworded ones it never saw.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.paths import ASSETS, SAMPLE_DATA, runs_dir

DEMO_RUN = "demo-brindlewick"
REWORDED = ASSETS / "sample_eval.csv"


class BakeFailed(RuntimeError):
    """The demo run did not finish; the message says why."""


def bake_demo(overrides: list[str] | tuple = (), log: Callable[[str], None] = print, force: bool = False) -> Path:
    """Train and evaluate the demo run once; a finished one is kept (the image build repeats nothing)."""
    from studio.evaluate import evaluate_file
    from studio.service import sized_recipe
    from studio.train import train

    run_dir = runs_dir() / DEMO_RUN
    if not force and runs.read_status(run_dir).get("state") == "done" and (run_dir / "eval.json").exists():
        log(f"The demo run is already baked: {run_dir}")
        return run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.time()
    recipe = sized_recipe(SAMPLE_DATA, None, list(overrides))  # the default a user gets for this file, seeded
    log(f"Training the demo run on {SAMPLE_DATA.name} ({recipe.model.base}, {recipe.method.name}, "
        f"{recipe.training.epochs:g} epochs)...")
    train(recipe, SAMPLE_DATA, run_dir, log=log)
    status = runs.read_status(run_dir)
    if status.get("state") != "done":
        raise BakeFailed(f"The demo run ended {status.get('state')}: {status.get('message')}")
    log(f"Answering the reworded questions of {REWORDED.name} with the base and the tuned model...")
    report = evaluate_file(run_dir, REWORDED, max_new_tokens=64)
    log(f"Answered {len(report['rows'])} questions.")
    report["source"] = f"reworded questions the run never saw ({REWORDED.name})"
    runs.write_json_atomic(run_dir / "eval.json", report)
    from studio.card import write_card

    write_card(run_dir)
    log(f"Demo run baked in {time.time() - started:.0f} s: {run_dir}")
    return run_dir


def demo_run() -> str | None:
    """The baked run's id where it is there and finished, else the newest finished run, else None."""
    if runs.read_status(runs_dir() / DEMO_RUN).get("state") == "done":
        return DEMO_RUN
    done = [r["run_id"] for r in runs.list_runs() if r["state"] == "done"]
    return done[0] if done else None


def demo_questions(run_id: str, taught: int = 3, reworded: int = 4) -> list[tuple[str, str]]:
    """(label, question) pairs for the landing: questions the run was taught, then reworded ones it never saw
    (its evaluation's questions), so a visitor sees both what it learned and how far that carries."""
    from studio.drafts import read_examples

    run_dir = runs_dir() / run_id
    out = [("taught", e.question) for e in read_examples(run_dir / "data" / "train.jsonl")[:taught] if e.question]
    try:
        report = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    out += [("reworded", row["question"]) for row in report.get("rows", [])[:reworded] if row.get("question")]
    return out
