"""Try several settings: one setting, 2-4 values, one run each in the queue; the comparison names the best.

An expert does not know whether a learning rate of 1.5e-3 or 6e-3 suits their facts, and should not have to: a
sweep trains the same recipe once per value, each run answers its held-out questions, and `studio.compare` names
the run that answered most (ties to the one the forgetting check did not flag). Only the learning rate, the rank
and the epochs are offered: they are what moves learning most, and one setting at a time keeps the answer readable
("the lower rate answered 2 more questions"). The runs share their drafted extra examples (`studio.drafts` caches
them by data and settings), so only the first drafts. A sweep is a file under the runs folder's `sweeps/` naming
its runs, so it survives a restart like the queue that runs it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path

from studio import runs
from studio.paths import runs_dir
from studio.recipe import Recipe, RecipeError, check

SETTINGS = {"training.learning_rate": "learning rate", "method.r": "LoRA rank r", "training.epochs": "epochs"}
DEFAULT_SETTING = "training.learning_rate"
FOLDER = "sweeps"
# Seconds per answer of the held-out evaluation on 2 cores for the 135M model (bench/README.md, "Chat and
# evaluation": 80 questions, base and tuned, in 27.6 s on llama.cpp, 57.4 s on torch); scaled by model size.
ANSWER_SECONDS = {"llama.cpp": 0.17, "torch": 0.36}
DEFAULT_PARAMS = 135e6


class SweepError(ValueError):
    """Every problem with the asked sweep, one per line."""


def _round(value: float) -> float:
    return float(f"{value:.2g}")


def suggest(recipe: Recipe, setting: str = DEFAULT_SETTING) -> list:
    """A small sensible set around the recipe's value (itself sized to the data): half, as is, and double."""
    if setting == "training.learning_rate":
        lr = recipe.training.learning_rate
        return [_round(lr / 2), lr, _round(lr * 2)]
    if setting == "method.r":
        r = recipe.method.r
        return sorted({max(r // 2, 1), r, min(r * 2, 256)})
    if setting == "training.epochs":
        e = recipe.training.epochs
        return sorted({max(round(e / 2, 1), 1), e, e * 2})
    raise SweepError(f"Studio sweeps {', '.join(SETTINGS.values())}; not {setting!r}.")


def parse_values(text: str | list | None) -> list:
    """"1e-3, 3e-3; 6e-3" or a list -> numbers; empty -> [] (Studio picks)."""
    if text is None or text == "":
        return []
    items = text if isinstance(text, list) else str(text).replace(";", ",").split(",")
    out, bad = [], []
    for item in items:
        if str(item).strip() == "":
            continue
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            bad.append(str(item).strip())
    if bad:
        raise SweepError(f"These values are not numbers: {', '.join(bad)}. Write numbers separated by commas, "
                         "e.g. 1e-3, 3e-3, 6e-3.")
    return out


def plan(recipe: Recipe, setting: str = DEFAULT_SETTING, values: list | None = None) -> list[Recipe]:
    """One checked recipe per value; every problem is reported at once. A rank keeps its alpha/r ratio, so only
    the capacity changes, not the strength of the update."""
    if setting not in SETTINGS:
        raise SweepError(f"Pick the setting to try from {', '.join(SETTINGS)}; not {setting!r}.")
    values = list(values) if values else suggest(recipe, setting)
    problems = []
    if not 2 <= len(values) <= 4:
        problems.append(f"Give 2 to 4 values to try, not {len(values)}.")
    if len({float(v) for v in values}) != len(values):
        problems.append("Each value once: the same value twice trains the same run twice.")
    if setting == "method.r" and any(float(v) != int(float(v)) for v in values):
        problems.append("The rank r is a whole number (8, 16, 32, ...).")
    planned = []
    for value in values:
        one = copy.deepcopy(recipe)
        if setting == "training.learning_rate":
            one.training.learning_rate = float(value)
        elif setting == "training.epochs":
            one.training.epochs = float(value)
        else:
            ratio = recipe.method.alpha / recipe.method.r
            one.method.r = int(float(value))
            one.method.alpha = max(int(round(ratio * one.method.r)), 1)
        try:
            planned.append(check(one))
        except RecipeError as exc:
            problems.extend(f"{SETTINGS[setting]} {value:g}: {p}" for p in exc.problems)
    if problems:
        raise SweepError("\n".join(dict.fromkeys(problems)))
    return planned


def estimate_seconds(recipes: list[Recipe], data_path: str | Path) -> dict:
    """{"train", "drafting", "evaluation", "total"} in seconds for the whole sweep on this machine: each run's training
    (studio.estimate), the drafting once (the runs share it) and each run's held-out evaluation, base and tuned."""
    from studio.data import load_data, shared_prefix_length, split_examples, token_lengths
    from studio.estimate import estimate
    from studio.kernels.gguf_decode import available
    from studio.models import load_tokenizer

    first = recipes[0]
    report = load_data(data_path, columns=first.data.columns or None)
    if not report.ok:
        raise SweepError(f"The data cannot be trained on: {report.summary()}")
    tokenizer = load_tokenizer(first.model.base, first.model.trust_remote_code, log=lambda _: None)
    train_rows, held = split_examples(report.examples, first.data.eval_size, first.training.seed)
    lengths = token_lengths(tokenizer, train_rows, first.data.system_prompt)
    prefix = shared_prefix_length(tokenizer, first.data.system_prompt)
    train = drafting = 0.0
    params = DEFAULT_PARAMS
    for recipe in recipes:
        est = estimate(recipe, tuple(lengths), prefix)
        train += est.seconds or 0.0
        drafting = drafting or (est.prep_seconds or 0.0)
        params = est.total or params
    # Held out, or (a small upload) its questions reworded: about one question per pair either way.
    questions = len(held) or len(report.examples)
    per_answer = ANSWER_SECONDS["llama.cpp" if available() else "torch"] * params / DEFAULT_PARAMS
    evaluation = len(recipes) * questions * 2 * per_answer
    return {"train": round(train), "drafting": round(drafting), "evaluation": round(evaluation),
            "total": round(train + drafting + evaluation)}


def finished_run(recipe: Recipe, data_path: str | Path, root: Path | None = None) -> str | None:
    """The newest finished, evaluated run with exactly these settings on exactly this data, or None: a sweep takes
    it as one of its runs instead of training it again (the expert trained once, then asks what else to try)."""
    from studio.compare import flat_settings, settings

    source = Path(data_path)
    want = copy.deepcopy(recipe)
    want.data.path = f"data/{source.name}"
    target, digest = flat_settings(want), hashlib.sha256(source.read_bytes()).hexdigest()
    base = Path(root) if root else runs_dir()
    for row in runs.list_runs(base):
        run_dir = base / row["run_id"]
        data = run_dir / "data" / source.name
        if row["state"] != "done" or not (run_dir / "eval.json").is_file() or not data.is_file():
            continue
        try:
            same = settings(run_dir) == target
        except (OSError, RecipeError):
            continue
        if same and hashlib.sha256(data.read_bytes()).hexdigest() == digest:
            return row["run_id"]
    return None


def folder(root: Path | None = None) -> Path:
    return (Path(root) if root else runs_dir()) / FOLDER


def new_id(setting: str, values: list) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(json.dumps([setting, values, time.time()]).encode()).hexdigest()[:4]
    return f"sweep-{stamp}-{setting.split('.')[-1].replace('_', '-')}-{digest}"


def save(sweep_id: str, record: dict, root: Path | None = None) -> None:
    folder(root).mkdir(parents=True, exist_ok=True)
    runs.write_json_atomic(folder(root) / f"{sweep_id}.json", record)


def read(sweep_id: str, root: Path | None = None) -> dict:
    path = folder(root) / f"{Path(sweep_id).name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SweepError(f"No sweep named {sweep_id!r}.") from None


def listing(root: Path | None = None) -> list[dict]:
    """Every sweep, newest first, with how far it is: id, setting, values, runs, done, best."""
    out = []
    for path in sorted(folder(root).glob("sweep-*.json"), reverse=True):
        try:
            out.append(progress(path.stem, root))
        except SweepError:
            continue
    return out


def progress(sweep_id: str, root: Path | None = None) -> dict:
    """The sweep's record with its runs' states, how many are finished and, once any is evaluated, the best."""
    from studio.compare import best

    record = read(sweep_id, root)
    base = Path(root) if root else runs_dir()
    present = [r for r in record.get("runs", []) if (base / r / "recipe.yaml").exists()]
    states = {r: runs.read_status(base / r).get("state", "unknown") for r in present}
    finished = [r for r in present if states[r] in runs.FINAL]
    winner = best([base / r for r in finished]) if finished else None
    return record | {"runs": present, "states": states, "finished": len(finished), "best": winner,
                     "done": bool(present) and len(finished) == len(present)}


def describe(info: dict) -> str:
    """One line for the sweep, in plain words."""
    label = SETTINGS.get(info["setting"], info["setting"])
    values = ", ".join(f"{v:g}" for v in info["values"])
    line = f"{info['id']}: {label} {values}; {info['finished']} of {len(info['runs'])} runs finished"
    if info.get("best"):
        value = info.get("value_of", {}).get(info["best"])
        line += f"; best so far {info['best']}" + (f" ({label} {value:g})" if value is not None else "")
    return line
