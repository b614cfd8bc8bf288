"""The expert's loop behind every way in: marks and corrections, train again, data revisions, the runs queue,
sweeps of one setting, the optional judge and the comparison of runs. No gradio in here.

Each function checks as `studio.service` does (it calls service's own checks: run ids, demo mode, the recipe, the
data) and raises `UserError` with a message meant for a person; the Evaluate, Train and Runs tabs, the CLI
(`studio.cli_loop`) and the scripting API call the same functions.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from studio import policy, run_queue, runs
from studio.jobs import jobs
from studio.paths import downloads_dir, prune_downloads
from studio.policy import UserError, refuse_in_demo
from studio.policy import recipe_problems as shared_problems
from studio.recipe import Recipe
from studio.service import check_data, run_dir, start


def queue() -> list[dict]:
    """The runs waiting to train, first to start first: position, run_id, data, method, r, epochs, learning_rate."""
    return run_queue.listing()


def queue_move(run_id: str, position: int) -> list[dict]:
    """Move a waiting run to `position` (1 = next); returns the queue."""
    refuse_in_demo("changing the queue")
    try:
        run_queue.move(run_dir(run_id).name, int(position))
    except (run_queue.QueueError, TypeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    return queue()


def queue_cancel(run_id: str) -> list[dict]:
    """Take a waiting run out of the queue (its folder goes: it holds only its recipe and data); returns the queue."""
    refuse_in_demo("changing the queue")
    try:
        run_queue.cancel(run_dir(run_id).name)
    except run_queue.QueueError as exc:
        raise UserError(str(exc)) from None
    return queue()


def mark_answer(run_id: str, question: str, answer: str, right: bool, correction: str = "",
                source: str = "evaluate") -> dict:
    """Keep an expert's mark of a tuned answer (right, or wrong with the right answer) in the run's folder."""
    from studio.corrections import CorrectionError, record

    refuse_in_demo("correcting answers")
    path = run_dir(run_id)
    cap = policy.limits().prompt_chars  # a mark is kept in the run folder: no caller writes more than a question
    for name, text in (("question", question), ("model's answer", answer), ("correction", correction)):
        if len(str(text or "")) > cap:
            raise UserError(f"The {name} is {len(str(text)):,} characters long; this studio keeps at most {cap:,} "
                            "(STUDIO_MAX_PROMPT_CHARS). Shorten it.")
    try:
        return record(path, question, answer, bool(right), correction, source)
    except CorrectionError as exc:
        raise UserError(str(exc)) from None


def corrections_table(run_id: str) -> list[dict]:
    """The run's marks, the latest of each question: question, verdict, correction, the model's answer."""
    from studio.corrections import latest

    return list(latest(run_dir(run_id)).values())


def revisions_table(run_id: str | Path) -> list[dict]:
    """The revisions of the run's data, oldest first: file, rows, added, edited, sha256, who, when (the upload itself
    is never changed)."""
    from studio.corrections import revisions

    return [{"file": r["file"], "rows": r["rows"], "added": len(r["added"]), "edited": len(r["edited"]),
             "sha256": r["sha256"], "who": r.get("who", ""),
             "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["when"]))}
            for r in revisions(run_id if isinstance(run_id, Path) else run_dir(run_id))]


def revision_file(run_id: str, name: str) -> str:
    """A copy of one revision of the run's data in the downloads folder; its path."""
    from studio.corrections import REVISIONS

    known = {r["file"] for r in revisions_table(run_id)}
    if name not in known:
        raise UserError(f"Run {run_id} has no data revision named {str(name)[:80]!r}. Pick one from its list.")
    prune_downloads()
    target = downloads_dir() / f"{run_id}-{name}"
    shutil.copyfile(run_dir(run_id) / REVISIONS / name, target)
    return str(target)


def preference_file(run_id: str) -> str:
    """The run's corrections as a preference file (prompt, chosen, rejected) in the downloads folder; its path."""
    from studio.corrections import CorrectionError, write_preferences

    prune_downloads()
    try:
        return str(write_preferences(run_dir(run_id), downloads_dir() / f"{run_id}-corrections-preferences.csv"))
    except CorrectionError as exc:
        raise UserError(str(exc)) from None


def train_again(run_id: str, continue_training: bool = False) -> str:
    """A new run from the run's recipe on a new revision of its data with every correction in it; its id.

    From scratch: a fresh adapter learns the corrected data from the start. Continued: the run's adapter keeps
    training on it, which keeps what it learned and takes the corrections on top (an SFT LoRA run only)."""
    from studio.corrections import CorrectionError
    from studio.corrections import train_again as plan

    refuse_in_demo("training")
    try:
        recipe, data = plan(run_dir(run_id), continue_training)
    except CorrectionError as exc:
        raise UserError(str(exc)) from None
    if continue_training:
        recipe.method.init_adapter = run_id  # a run id, as a shared studio accepts (policy.recipe_problems)
    return start(recipe, str(data))


def plan_sweep(recipe: Recipe, data_path: str | None, setting: str = "", values=None) -> dict:
    """What a sweep would train, before it starts: {"setting", "values", "reused" (value index -> a finished run with
    exactly those settings on this data, taken as it is), "estimate" (seconds by part, the runs to train only),
    "text"}."""
    return _plan_sweep(recipe, data_path, setting, values)[1]


def _plan_sweep(recipe: Recipe, data_path: str | None, setting: str, values) -> tuple[list[Recipe], dict]:
    """(one checked recipe per value, the plan `plan_sweep` returns)."""
    from studio import sweep

    refuse_in_demo("training")
    check_data(data_path, recipe)
    setting = setting or sweep.DEFAULT_SETTING
    try:
        recipes = sweep.plan(recipe, setting, sweep.parse_values(values))
        reused = {i: run for i, one in enumerate(recipes) if (run := sweep.finished_run(one, data_path))}
        to_train = [one for i, one in enumerate(recipes) if i not in reused]
        est = (sweep.estimate_seconds(to_train, data_path) if to_train
               else {"train": 0, "drafting": 0, "evaluation": 0, "total": 0})
    except sweep.SweepError as exc:
        raise UserError(str(exc)) from None
    chosen = [_setting_value(r, setting) for r in recipes]
    text = f"{len(recipes)} runs, {sweep.SETTINGS[setting]} " + ", ".join(f"{v:g}" for v in chosen)
    if reused:
        text += (" (" + ", ".join(f"{chosen[i]:g} is run {run}" for i, run in reused.items())
                 + f", already trained: {len(to_train)} to train)")
    text += (f": about {runs.duration(est['total'])} on this machine (training {runs.duration(est['train'])}, "
             f"drafting once {runs.duration(est['drafting'])}, answering the held-out questions "
             f"{runs.duration(est['evaluation'])}).")
    return recipes, {"setting": setting, "values": chosen, "reused": reused, "estimate": est, "text": text}


def _setting_value(recipe: Recipe, setting: str):
    section, name = setting.split(".")
    return getattr(getattr(recipe, section), name)


def start_sweep(recipe: Recipe, data_path: str | None, setting: str = "", values=None) -> dict:
    """Queue one run per value of one setting (a finished run with the very same settings and data counts as it
    is); {"id", "runs", "values", "estimate", "text"}. The runs answer their held-out questions, and
    `sweep_progress` names the best once they are evaluated."""
    from studio import sweep

    recipes, planned = _plan_sweep(recipe, data_path, setting, values)
    for one in recipes:
        if shared_problems(one):
            raise UserError("The recipe has problems:\n" + "\n".join(shared_problems(one)))
    new = len(recipes) - len(planned["reused"])
    waiting, room = len(run_queue.order()), policy.limits().queued_runs
    if waiting + new > room + (jobs.active() is None):
        raise UserError(f"A sweep of {new} runs does not fit in the queue ({waiting} waiting, at most "
                        f"{room}; STUDIO_MAX_QUEUE). Cancel some or wait for the queue to move.")
    sweep_id = sweep.new_id(planned["setting"], planned["values"])
    label = planned["setting"].split(".")[-1].replace("_", "-")
    record = {"id": sweep_id, "setting": planned["setting"], "values": planned["values"], "runs": [], "value_of": {},
              "estimate": planned["estimate"], "data": Path(str(data_path)).name, "created": time.time()}
    sweep.save(sweep_id, record)  # first: a run that starts at once already belongs to a sweep on file
    stem = Path(str(data_path)).stem
    for i, (one, value) in enumerate(zip(recipes, planned["values"], strict=True)):
        run_id = planned["reused"].get(i) or start(one, data_path, name=f"{stem}-{label}-{value:g}", sweep=sweep_id)
        record["runs"].append(run_id)
        record["value_of"][run_id] = value
        sweep.save(sweep_id, record)
    return {"id": sweep_id, "runs": record["runs"], "values": planned["values"], "estimate": planned["estimate"],
            "reused": planned["reused"], "text": planned["text"]}


def sweeps() -> list[dict]:
    """Every sweep, newest first, with its runs, how many finished and the best so far."""
    from studio import sweep

    return sweep.listing()


def sweep_progress(sweep_id: str) -> dict:
    from studio import sweep

    try:
        return sweep.progress(sweep_id)
    except sweep.SweepError as exc:
        raise UserError(str(exc)) from None


def judge(run_id: str | Path, endpoint: str = "", model: str = "", api_key: str = "",
          progress: Callable[[int, int], None] | None = None) -> dict:
    """The optional judge's grades of the run's held-out answers (`studio.judge`). An endpoint the caller names is
    checked as every endpoint is (refused on a shared studio); without one, the operator's STUDIO_JUDGE_* settings."""
    from studio.judge import JudgeError, configured, judge_run

    path = run_id if isinstance(run_id, Path) else run_dir(run_id)  # a folder: the CLI's resolved run
    default_endpoint, default_model = configured()
    if endpoint.strip():
        problem = policy.endpoint_problem(endpoint, "judge endpoint")
        if problem:
            raise UserError(problem)
    key = api_key.strip() or os.environ.get("STUDIO_JUDGE_API_KEY") or None
    try:
        return judge_run(path, endpoint.strip() or default_endpoint, model.strip() or default_model, key, progress)
    except JudgeError as exc:
        raise UserError(str(exc).replace(api_key.strip(), "***") if api_key.strip() else str(exc)) from None


def compare_runs(run_ids: list[str]) -> dict:
    """The comparison of `studio.compare` for runs named by id, checked as every way in checks them."""
    from studio.compare import compare

    if len(run_ids or []) < 2:
        raise UserError("Pick at least two runs to compare.")
    try:
        return compare([run_dir(r) for r in run_ids])
    except ValueError as exc:
        raise UserError(str(exc)) from None
