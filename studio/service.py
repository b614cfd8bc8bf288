"""The service layer: the plain functions behind every button, the scripting API and the CLI; no gradio in here.

Each raises `UserError` with a message meant for a person; `studio.ui.guard` turns it into `gr.Error`. The named
endpoints (see `studio.ui.app`) are thin wrappers over `train_api`, `status`, `stop`, `compare` and `runs_table`
(and `studio.loop`'s functions for the expert's loop), so a script and a click run the very same code, through the
same checks of `studio.policy`.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from studio import policy, run_queue, runs
from studio.data import detect_preferences, load_data, load_preferences
from studio.defaults import size_to_data
from studio.export import export_run
from studio.hub import HubError, push_to_hub
from studio.jobs import Busy, jobs
from studio.paths import DEFAULT_RECIPE, downloads_dir, prune_downloads

# Re-exported: the tabs and the tests read the policy through the service layer they call.
from studio.policy import UserError, base_problem, demo_mode, refuse_in_demo, shared_mode  # noqa: F401
from studio.policy import recipe_problems as shared_problems
from studio.progress import request_stop
from studio.recipe import Recipe, RecipeError, apply_overrides, check, load, loads

EXPORT_FORMATS = ("adapter", "merged", "gguf-f16", "gguf-q8_0")
STATUS_KEYS = ("state", "message", "step", "total", "epoch", "loss", "eval_loss", "eta", "train_seconds")


def max_upload_bytes() -> int:
    """STUDIO_MAX_UPLOAD_MB (default 50): the same cap as the upload limit, enforced again when a file is read."""
    return policy.limits().upload_bytes


def default_recipe() -> Recipe:
    return load(DEFAULT_RECIPE)


def sized_recipe(data_path: str | Path | None, recipe: Recipe | None = None, overrides: list[str] | tuple = ()
                 ) -> Recipe:
    """The recipe with its overrides, or (none given) the default CPU recipe sized to the data, the overrides kept
    over the sizing: the one entry point the CLI (`train --data FILE`) and `/api_train` share. Raises RecipeError."""
    chosen = recipe if recipe is not None else default_recipe()
    if overrides:
        chosen = apply_overrides(chosen, list(overrides))
    if recipe is None:
        chosen = size_to_data(chosen, data_path, explicit=list(overrides))
    return check(chosen)


def recipe_from_yaml(text: str, data_path: str | None = None) -> Recipe:
    """The recipe in `text`, or (when empty) the default CPU recipe sized to the data, as the CLI does."""
    try:
        return sized_recipe(data_path, loads(text) if text and text.strip() else None)
    except RecipeError as exc:
        raise UserError("The recipe has problems:\n" + "\n".join(exc.problems)) from None


def check_data(data_path: str | None, recipe: Recipe):
    """The data report for `data_path`, or a UserError saying why it cannot be trained on."""
    if not data_path:
        raise UserError("No data loaded. Upload a file on the Data tab (or press 'Load sample') first.")

    columns = recipe.data.columns or None
    if recipe.method.objective != "sft":
        report = load_preferences(data_path, columns=columns, max_bytes=max_upload_bytes())
        if not report.ok:
            raise UserError(f"The preference data cannot be trained on with {recipe.method.objective}: "
                            f"{report.summary()}")
        return report
    report = load_data(data_path, columns=columns, max_bytes=max_upload_bytes())
    if not report.ok:
        if detect_preferences(data_path, report, max_upload_bytes()) is not None:
            raise UserError("This is a preference file (prompt, chosen, rejected): set the objective to dpo or orpo "
                            "on the Model & method tab.")
        raise UserError(f"The data cannot be trained on: {report.summary()}")
    return report


def start(recipe: Recipe, data_path: str | None, name: str = "", **status) -> str:
    """Start a run in the background and return its id; while another run trains it waits in the queue."""
    refuse_in_demo("training")
    try:
        check(recipe)
    except RecipeError as exc:
        raise UserError("The recipe has problems:\n" + "\n".join(exc.problems)) from None
    if shared_problems(recipe):
        raise UserError("The recipe has problems:\n" + "\n".join(shared_problems(recipe)))
    if recipe.method.name == "qlora":
        from studio.models import qlora_problem

        problem = qlora_problem()
        if problem:
            raise UserError(problem)
    check_data(data_path, recipe)
    try:
        run_dir = jobs.start(recipe, data_path, name=name or Path(str(data_path)).stem, **status)
    except run_queue.QueueError as exc:
        raise UserError(str(exc)) from None
    return run_dir.name


def draft_ahead(recipe: Recipe | None, data_path: str | None) -> str:
    """Begin drafting the run's extra examples now (the data was just loaded), so Start trains within seconds; see
    `studio.predraft`. Only for one local user, with no run training; returns what it did, in plain words."""
    from studio.predraft import predraft, worth_it

    if recipe is None or not data_path or not Path(data_path).is_file():
        return "Nothing to draft: no data or no valid recipe."
    try:
        recipe = check(recipe)  # as Start checks it: the same recipe then has the same drafts
    except RecipeError:
        return "Nothing to draft: the recipe has problems."
    if shared_mode():
        return "Not drafting ahead: this studio is shared, so drafting starts with a run."
    if jobs.active() is not None:
        return "Not drafting ahead: a run is training."
    if not worth_it(recipe):
        return "Nothing to draft ahead for these settings."
    return ("Drafting the extra examples now, so Start trains at once." if predraft.start(recipe, data_path)
            else "Already drafting for this data and these settings.")


def prepare_api(data_file: str | None, recipe_yaml: str = "") -> str:
    return draft_ahead(recipe_from_yaml(recipe_yaml, data_file), data_file)


def train_api(data_file: str | None, recipe_yaml: str = "") -> str:
    recipe = recipe_from_yaml(recipe_yaml, data_file)
    return start(recipe, data_file)


def run_dir(run_id: str) -> Path:
    if not run_id:
        raise UserError("No run chosen. Pick one from the list of runs.")
    try:
        return runs.resolve_run(run_id)
    except runs.RunNotFound as exc:
        raise UserError(str(exc)) from None


def status(run_id: str) -> dict:
    """The run's state and progress: state, message, step, total, epoch, loss, eval_loss, eta, train_seconds."""
    current = runs.read_status(run_dir(run_id))
    return {"run_id": run_id} | {k: current.get(k) for k in STATUS_KEYS}


def stop(run_id: str) -> dict:
    """Ask a run to stop at its next step (with a checkpoint); a run owned by a CLI process is asked by file."""
    path = run_dir(run_id)
    if path.name in run_queue.order():  # not started: nothing to stop, so it leaves the queue
        refuse_in_demo("changing the queue")
        run_queue.cancel(path.name)
        return {"run_id": run_id, "state": "cancelled", "message": "Taken out of the queue before it started."}
    if not jobs.stop(path):
        if runs.read_status(path).get("state") not in runs.ACTIVE:
            raise UserError(f"Run {run_id} is not training, so there is nothing to stop.")

        request_stop(path)
    return status(run_id)


def resume(run_id: str) -> str:
    refuse_in_demo("training")
    try:
        jobs.resume(run_dir(run_id))
    except Busy as exc:
        raise UserError(str(exc)) from None
    return run_id


def runs_table() -> list[dict]:
    return runs.list_runs()


def watch_default() -> str | None:
    """The run a freshly opened page should show: the one training now, else the newest."""
    active = jobs.active()
    if active is not None:
        return active.name
    rows = runs.list_runs()
    return rows[0]["run_id"] if rows else None


def runs_with_weights() -> list[str]:
    return [r["run_id"] for r in runs.list_runs() if runs.final_weights(runs.runs_dir() / r["run_id"])]


def sft_adapter_runs() -> list[str]:
    """Finished SFT runs with a LoRA adapter: the runs a DPO or ORPO run can start from (method.init_adapter)."""
    out = []
    for row in runs.list_runs():
        path = runs.runs_dir() / row["run_id"]
        status = runs.read_status(path)
        if (row["state"] == "done" and (path / "adapter" / "adapter_config.json").is_file()
                and status.get("recipe", {}).get("objective", "sft") == "sft"):
            out.append(row["run_id"])
    return out


def sft_start(run_id: str) -> Path | None:
    """The SFT adapter a preference run started from (copied into its folder), or None."""
    path = run_dir(run_id)
    try:
        method = load(path / "recipe.yaml").method
    except RecipeError:
        return None
    start = path / method.init_adapter if method.objective != "sft" and method.init_adapter.strip() else None
    return start if start is not None and (start / "adapter_config.json").is_file() else None


def sft_chat_model(run_id: str):
    """The base model with the SFT adapter a preference run started from: the middle of base -> SFT -> DPO/ORPO."""
    start = sft_start(run_id)
    if start is None:
        raise UserError(f"Run {run_id} did not start from an SFT run, so there is no SFT model to compare.")
    from studio.chat import get_chat_model

    try:
        return get_chat_model(run_dir(run_id), weights=start)
    except Exception as exc:  # noqa: BLE001 - loading failures become one plain message
        raise UserError(f"Could not load the SFT adapter of run {run_id}: {exc}") from None


def log_tail(run_id: str, lines: int = 40) -> str:
    """The run's last log lines, from its folder so that they survive a restart of the studio."""
    try:
        text = (run_dir(run_id) / "train.log").read_text(encoding="utf-8", errors="replace")
    except (OSError, UserError):
        return ""
    return "\n".join(text.splitlines()[-lines:])


EXAMPLE_SOURCES = {"eval.jsonl": "Questions to try: held out from training",
                   "reworded.jsonl": "Questions to try: yours in other words, never trained on",
                   "train.jsonl": "Questions to try: from training (nothing was held out)"}


def held_out_examples(run_id: str, limit: int = 30) -> list[tuple[str, str]]:
    """(question, expected answer) pairs from the run's held-out split, else its questions reworded and kept out of
    training (a small upload), else its training split; `example_source` names which."""
    return _examples(run_id, limit)[1]


def example_source(run_id: str) -> str:
    """What `held_out_examples` gives for this run, in plain words (a label for the list)."""
    return EXAMPLE_SOURCES.get(_examples(run_id, 1)[0], "")


def _examples(run_id: str, limit: int) -> tuple[str, list[tuple[str, str]]]:
    path = run_dir(run_id) / "data"
    out: list[tuple[str, str]] = []
    name = ""
    for name in EXAMPLE_SOURCES:
        for row in runs.read_jsonl(path / name):
            # Q&A rows hold messages; preference rows a prompt and the chosen reply (the answer it was taught).
            messages = row.get("messages") or (row.get("prompt") or []) + (row.get("chosen") or [])
            question = next((m["content"] for m in messages if m.get("role") == "user"), "")
            answer = next((m["content"] for m in reversed(messages) if m.get("role") == "assistant"), "")
            if question:
                out.append((question, answer))
        if out:
            break
    return name, out[:limit]


def compare(run_id: str, prompt: str, max_new_tokens: int = 96) -> dict:
    """Greedy replies of the base model and of the tuned one to `prompt`."""
    prompt, max_new_tokens = policy.prompt(prompt), policy.new_tokens(max_new_tokens)
    run_dir(run_id)
    with policy.model_turns.turn("the comparison"):  # loading the model too: two loads at once share its cache
        model = chat_model(run_id)
        return {"base": model.reply(prompt, tuned=False, max_new_tokens=max_new_tokens),
                "tuned": model.reply(prompt, tuned=True, max_new_tokens=max_new_tokens)}


def chat_model(run_id: str):
    from studio.chat import get_chat_model

    path = run_dir(run_id)
    if runs.final_weights(path) is None:
        raise UserError(f"Run {run_id} has no trained weights yet. Wait for it to finish (or resume it).")
    try:
        return get_chat_model(path)
    except Exception as exc:  # noqa: BLE001 - loading failures become one plain message
        raise UserError(f"Could not load run {run_id}: {exc}") from None


def export(run_id: str, fmt: str, step: Callable[[str], None] = lambda _: None) -> str:
    """A zip of the run's adapter, its merged model or (fmt 'recipe') its recipe file; returns its path. `step`
    hears each step's name as it begins."""
    path = run_dir(run_id)
    out_root = downloads_dir()
    prune_downloads()
    if fmt == "recipe":
        target = out_root / f"{run_id}-recipe.yaml"
        shutil.copyfile(path / "recipe.yaml", target)
        return str(target)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = out_root / f"{run_id}-{fmt}-{stamp}"
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"Unknown export format '{fmt[:40]}': pick one of {', '.join(EXPORT_FORMATS)}.")
    try:
        with policy.model_turns.turn("the export") if fmt != "adapter" else contextlib.nullcontext():
            if fmt.startswith("gguf"):
                # A .gguf file (checked by loading it back) plus an Ollama Modelfile, zipped together.
                folder.mkdir(parents=True)
                quant = fmt.split("-", 1)[1] if "-" in fmt else "f16"
                export_run(path, "gguf", folder / f"{run_id}-{quant}.gguf", quant=quant, step=step)
            else:
                export_run(path, fmt, folder, step=step)
    except (FileNotFoundError, ValueError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(str(exc)) from None
    step("zipping the files for download")
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder)
    shutil.rmtree(folder, ignore_errors=True)
    return archive


def push(run_id: str, repo_id: str, token: str, what: str = "adapter", private: bool = True) -> str:
    """Push a run to the Hugging Face Hub; the token is used for this call only, never stored or shown."""
    refuse_in_demo("Pushing to the Hub")
    if not repo_id.strip() or "/" not in repo_id:
        raise UserError("Give the repository as owner/name, e.g. my-team/ferry-assistant.")
    if not token.strip():
        raise UserError("Paste a Hugging Face access token with write permission.")

    try:
        return push_to_hub(run_dir(run_id), repo_id.strip(), token.strip(), what=what, private=private)
    except (HubError, FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc).replace(token.strip(), "***")) from None
