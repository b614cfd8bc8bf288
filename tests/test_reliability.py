"""Reliability of the engine and the CLI: bad input never crashes, faults leave a resumable run, resume is exact,
and nothing escapes the run folder.

Most CLI calls run in-process through `studio.cli.main` (fast); a few run `python -m studio` in a subprocess to
prove that no traceback reaches stderr and that a kill -9 leaves a run that `--resume` finishes.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

import pytest
from badfiles import CASES, HTML
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio import cli, runs
from studio.data import load_data, tokenize_example
from studio.recipe import SECTIONS, Recipe, RecipeError, apply_overrides, from_dict, load, validate
from studio.train import train

REPO = Path(__file__).resolve().parent.parent
QUIET = {"log": lambda _: None}


def tiny_recipe(model_dir: Path, *overrides: str) -> Recipe:
    """Deterministic settings: fp32, no dropout, nothing held out, a fixed seed."""
    return apply_overrides(Recipe(), [
        f"model.base={model_dir}", "data.max_length=64", "data.eval_size=0", "training.batch_size=4",
        "training.learning_rate=0.05", "training.epochs=3", "training.save_steps=100", "training.precision=fp32",
        "training.seed=7", "method.r=4", "method.alpha=8", "method.dropout=0", *overrides,
    ])


@pytest.fixture
def pairs_csv(tmp_path) -> Path:
    """12 rows of equal token length (two-digit item numbers), so batches never need padding."""
    path = tmp_path / "pairs.csv"
    rows = [(f"What is the code word for item {i}?", f"The code word for item {i} is zorblax{i}.")
            for i in range(10, 22)]
    path.write_text("question,answer\n" + "".join(f"{q},{a}\n" for q, a in rows), encoding="utf-8")
    return path


def cli_run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **extra}


def studio_subprocess(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *argv], check=False, cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def loss_rows(run_dir: Path) -> list[dict]:
    return [m for m in runs.read_metrics(run_dir) if "loss" in m]


# --- 1. bad input through `check-data` ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_check_data_exit_code_and_message_for_every_bad_file(case, tmp_path, capsys):
    path = case.write(tmp_path)
    code, out, err = cli_run(capsys, "check-data", str(path), "--json")
    assert code == (0 if case.trainable else 2), out
    report = json.loads(out)
    said = "\n".join(report["errors"] + report["warnings"])
    for words in case.mentions:
        assert words in said
    if case.rows is not None:
        assert report["rows"] == case.rows
    if not case.trainable:
        assert report["errors"], "a file that cannot be trained on says why"
    text_code, text_out, text_err = cli_run(capsys, "check-data", str(path))
    assert text_code == code
    assert "Traceback" not in out + err + text_out + text_err


def test_html_in_cells_is_kept_verbatim(tmp_path):
    case = next(c for c in CASES if c.id == "html-in-cells")
    report = load_data(case.write(tmp_path))
    assert (report.examples[0].question, report.examples[0].answer) == (HTML, HTML)


def test_broken_jsonl_names_the_file_line_not_the_line_within_it(tmp_path):
    case = next(c for c in CASES if c.id == "broken-jsonl-lines")
    errors = load_data(case.write(tmp_path)).to_json()["errors"]
    assert errors[0].startswith("Line 2 is not valid JSON (Expecting ',' delimiter at column 30)")
    assert not any("line 1" in e for e in errors)


def test_check_data_on_a_missing_file_or_a_folder(tmp_path, capsys):
    for target in (tmp_path / "nope.csv", tmp_path):
        code, out, err = cli_run(capsys, "check-data", str(target), "--json")
        assert code == 2 and "not found" in json.loads(out)["errors"][0]
        assert "Traceback" not in out + err


@pytest.mark.parametrize("case_id", ["binary-as-csv", "corrupt-xlsx", "broken-json"])
def test_check_data_subprocess_never_prints_a_traceback(case_id, tmp_path):
    case = next(c for c in CASES if c.id == case_id)
    result = studio_subprocess("check-data", str(case.write(tmp_path)), "--json")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert json.loads(result.stdout)["errors"]


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    """About 70 MB of ordinary rows, written in well under a second."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    row = ("What is the warranty period for product number {:07d} in the catalogue?,"
           "The warranty for product {:07d} is two years from the date of purchase; keep the receipt.\n")
    n = 70_000_000 // len(row.format(0, 0))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("question,answer\n")
        fh.writelines(row.format(i, i) for i in range(n))
    return path


def test_size_cap_refuses_a_70mb_file_without_reading_it(big_csv, monkeypatch):
    """The UI/API pass max_bytes (STUDIO_MAX_UPLOAD_MB, default 50); the check is a stat, not a read."""
    assert big_csv.stat().st_size > 65_000_000
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: pytest.fail("read a file over the limit"))
    started = time.perf_counter()
    report = load_data(big_csv, max_bytes=50 * 1000 * 1000)
    assert time.perf_counter() - started < 0.5
    assert not report.ok and "70.0 MB; the limit is 50 MB" in report.summary()


def test_cli_loads_a_70mb_file_in_seconds(big_csv):
    """The CLI has no cap: a local file is the user's own, and training reads all of it anyway."""
    started = time.perf_counter()
    result = studio_subprocess("check-data", str(big_csv), "--json")
    elapsed = time.perf_counter() - started
    assert result.returncode == 0 and "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == report["rows_total"] > 400_000 and not report["errors"]
    assert elapsed < 30, f"check-data took {elapsed:.1f} s on a 70 MB file"  # ~5 s on a quiet 2-core machine


# --- 2. bad recipes through `train` -------------------------------------------------------------------------------

OUT_OF_RANGE = """\
method: {name: dora, r: 0, alpha: -1, dropout: 1.5}
data: {max_length: 4, eval_size: -1}
training: {epochs: 0, learning_rate: 5, batch_size: 0, warmup_ratio: 2, precision: fp8, lr_scheduler: wavy}
"""

BAD_RECIPES = {
    "yaml-syntax": ("training:\n  epochs: : 3\n", ["not valid YAML at line 2"]),
    "unknown-and-wrong-types": (
        "traning: {}\ntraining:\n  batch_sise: 4\n  epochs: many\nmethod:\n  r: big\n",
        ["traning: unknown section. Did you mean 'training'?",
         "training.batch_sise: unknown setting. Did you mean 'batch_size'?",
         "training.epochs: expected float, got 'many'", "method.r: expected int, got 'big'"]),
    "out-of-range": (OUT_OF_RANGE, ["method.name", "method.r", "method.alpha", "method.dropout", "data.max_length",
                                    "data.eval_size", "training.epochs", "training.learning_rate",
                                    "training.batch_size", "training.warmup_ratio", "training.precision",
                                    "training.lr_scheduler"]),
    "not-a-number": ("training:\n  learning_rate: .inf\n  epochs: .nan\n  warmup_ratio: .nan\n",
                     ["training.learning_rate", "training.epochs", "training.warmup_ratio"]),
    "number-beyond-float": ("training:\n  epochs: 1" + "0" * 400 + "\n", ["training.epochs", "too large"]),
    "python-tag": ("!!python/object/apply:os.system ['touch {marker}']\n", ["python/object"]),
    "python-name-tag": ("model:\n  base: !!python/name:os.system\n", ["python/name"]),
    "a-list": ("- model\n- data\n", ["expected a mapping"]),
    "not-text": (b"\xff\xfe\xfa\x00junk", ["cannot read"]),
}


@pytest.mark.parametrize("name", list(BAD_RECIPES))
def test_bad_recipe_exits_2_listing_every_problem(name, tmp_path, pairs_csv, capsys):
    content, expected = BAD_RECIPES[name]
    marker = tmp_path / "pwned"
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.replace("{marker}", str(marker)).encode())
    code, out, err = cli_run(capsys, "train", str(path), "--data", str(pairs_csv), "--out", str(tmp_path / "run"))
    assert code == 2
    for words in expected:
        assert words in err
    assert "Traceback" not in out + err
    assert not (tmp_path / "run").exists(), "no run folder for a recipe that cannot run"
    assert not marker.exists(), "YAML tags never run code"


def test_bad_overrides_and_missing_recipe_exit_2(tmp_path, pairs_csv, capsys):
    good = tmp_path / "good.yaml"
    Recipe().save(good)
    code, _, err = cli_run(capsys, "train", str(good), "--data", str(pairs_csv), "--set", "training.batch_size=0",
                           "--set", "method.r=-3", "--out", str(tmp_path / "run"))
    assert code == 2 and "training.batch_size" in err and "method.r" in err
    code, _, err = cli_run(capsys, "train", str(tmp_path / "missing.yaml"), "--data", str(pairs_csv))
    assert code == 2 and "cannot read" in err and "Traceback" not in err


def test_missing_data_file_is_bad_input_not_a_failed_run(tmp_path, runs_root, capsys):
    code, out, err = cli_run(capsys, "train", "--data", str(tmp_path / "typo.csv"))
    assert code == 2 and "typo.csv does not exist" in err and "Traceback" not in out + err
    assert not runs_root.exists() or not any(runs_root.iterdir()), "no failed run folder for a typo"


def test_bad_recipe_subprocess_lists_every_problem_without_a_traceback(tmp_path, pairs_csv):
    path = tmp_path / "bad.yaml"
    path.write_text(OUT_OF_RANGE, encoding="utf-8")
    result = studio_subprocess("train", str(path), "--data", str(pairs_csv), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if re.match(r"\s+(method|data|training)\.", line)]) >= 12


# --- 3. faults ----------------------------------------------------------------------------------------------------


def kill_9_when(ready, what: str, recipe_path: Path, data: Path, run_dir: Path, log_path: Path) -> subprocess.Popen:
    """`python -m studio train` in its own process, killed with SIGKILL as soon as `ready()`."""
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(recipe_path), "--data", str(data),
                                 "--out", str(run_dir)], cwd=REPO, env=subprocess_env(), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 150
        while not ready():
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, f"no {what} within 150 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc


def test_kill_9_mid_run_is_interrupted_then_resume_finishes(tiny_model_dir, pairs_csv, runs_root, tmp_path, capsys):
    save_steps, max_steps = 2, 10
    recipe_path = tmp_path / "recipe.yaml"
    tiny_recipe(tiny_model_dir, "training.batch_size=2", f"training.save_steps={save_steps}",
                f"training.max_steps={max_steps}").save(recipe_path)
    run_dir = runs_root / "killed"
    log_path = tmp_path / "train.out"
    proc = kill_9_when(lambda: runs.last_checkpoint(run_dir) is not None, "a checkpoint", recipe_path, pairs_csv,
                       run_dir, log_path)

    status = runs.read_status(run_dir)
    assert status["state"] == "running" and status["pid"] == proc.pid
    assert runs.mark_interrupted(runs_root) == [run_dir]
    status = runs.read_status(run_dir)
    assert status["state"] == "interrupted" and "Resume" in status["message"]
    assert runs.final_weights(run_dir) is None
    # A half-written adapter from some earlier crash is never taken for the final one.
    (run_dir / "adapter.tmp").mkdir()
    (run_dir / "adapter.tmp" / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    assert runs.final_weights(run_dir) is None

    # Every complete line parses; only a last line cut by the kill may not, and the reader skips it.
    *complete, _partial = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").split("\n")
    parsed = [json.loads(line) for line in complete]
    assert runs.read_metrics(run_dir)[: len(parsed)] == parsed
    last_logged = max(m["step"] for m in parsed)
    ckpt_step = int(runs.last_checkpoint(run_dir).name.split("-")[-1])
    assert last_logged - ckpt_step <= save_steps, "at most one checkpoint interval is lost"
    assert last_logged < max_steps, "the kill landed mid-run"

    code, _, err = cli_run(capsys, "train", "--out", str(run_dir), "--resume")
    assert code == 0, err
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status
    assert [m["step"] for m in loss_rows(run_dir)] == list(range(1, max_steps + 1))
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists() and not (run_dir / "adapter.tmp").exists()


def test_checkpoints_by_time_so_a_kill_loses_under_one_interval(tiny_model_dir, pairs_csv, runs_root, tmp_path):
    """Steps never reach save_steps here; the checkpoints come from training.save_seconds alone. The default is
    60 s (a kill after 70 s of training loses under 60 s); the test scales it to 2 s so it runs in seconds."""
    save_seconds, max_steps = 2, 100_000
    recipe_path = tmp_path / "recipe.yaml"
    tiny_recipe(tiny_model_dir, "training.batch_size=2", "training.save_steps=100000",
                f"training.save_seconds={save_seconds}", f"training.max_steps={max_steps}").save(recipe_path)
    run_dir = runs_root / "timed"
    def trained_long_enough() -> bool:  # 3.5 intervals, so the kill lands between two checkpoints
        rows = runs.read_metrics(run_dir) if (run_dir / "metrics.jsonl").exists() else []
        return bool(rows) and rows[-1]["elapsed"] >= 3.5 * save_seconds

    kill_9_when(trained_long_enough, "7 s of training", recipe_path, pairs_csv, run_dir, tmp_path / "train.out")
    rows = runs.read_metrics(run_dir)
    ckpt = runs.last_checkpoint(run_dir)
    assert ckpt is not None, "no checkpoint by time"
    ckpt_step = int(ckpt.name.split("-")[-1])
    assert ckpt_step < rows[-1]["step"] < max_steps
    at_ckpt = next(r for r in rows if r["step"] == ckpt_step)
    lost = rows[-1]["elapsed"] - at_ckpt["elapsed"]
    assert lost < save_seconds + 0.5, f"{lost:.1f} s of training lost"
    assert len(list((run_dir / "checkpoints").glob("checkpoint-*"))) <= 2, "old checkpoints are rotated out"
    # Resuming from it is the same as from any checkpoint (test_kill_9_mid_run_is_interrupted_then_resume_finishes).
    assert runs.mark_interrupted(runs_root) == [run_dir] and runs.resume_problem(run_dir) is None


def test_a_checkpoint_cut_short_is_not_resumed_from(tmp_path):
    for step, state in ((4, '{"global_step": 4}'), (6, '{"global_step": 6, "log_hist'), (8, None)):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if state is not None:
            (folder / "trainer_state.json").write_text(state, encoding="utf-8")
    assert runs.last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-4"


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_written_final_save(original):
    def save(self, save_directory, *args, **kwargs):
        if Path(save_directory).name.endswith(".tmp"):
            Path(save_directory).mkdir(parents=True, exist_ok=True)
            (Path(save_directory) / "adapter_model.safetensors").write_bytes(b"\0" * 10)
            _no_space()
        return original(self, save_directory, *args, **kwargs)

    return save


@pytest.mark.parametrize("where", ["data copy", "checkpoint", "final weights"])
def test_disk_full_fails_plainly_and_keeps_the_folder(where, tiny_model_dir, pairs_csv, tmp_path, monkeypatch):
    import peft
    import transformers

    if where == "data copy":
        monkeypatch.setattr(shutil, "copyfile", _no_space)
    elif where == "checkpoint":
        monkeypatch.setattr(transformers.Trainer, "_save_checkpoint", _no_space)
    else:
        monkeypatch.setattr(peft.PeftModel, "save_pretrained", _half_written_final_save(peft.PeftModel.save_pretrained))
    recipe = tiny_recipe(tiny_model_dir, "training.max_steps=2", "training.save_steps=1")
    run_dir = train(recipe, pairs_csv, tmp_path / "run", **QUIET)
    monkeypatch.undo()

    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "disk is full" in status["message"], status
    assert "Traceback" not in status["message"] and "Traceback" in (run_dir / "error.log").read_text()
    assert runs.final_weights(run_dir) is None, "no half-written weights are taken for final ones"
    if where == "data copy":
        return
    assert load(run_dir / "recipe.yaml").model.base == str(tiny_model_dir)
    assert (run_dir / "data" / "pairs.csv").read_bytes() == pairs_csv.read_bytes()
    assert runs.read_metrics(run_dir)
    if where == "checkpoint":
        # The process is still healthy: the next run in it succeeds.
        again = train(recipe, pairs_csv, tmp_path / "again", **QUIET)
        assert runs.read_status(again)["state"] == "done" and runs.final_weights(again)
    else:
        # The message says "free some space and resume": resuming from the end-of-run checkpoint finishes it.
        assert runs.last_checkpoint(run_dir) is not None
        train(None, None, run_dir, resume=True, **QUIET)
        assert runs.read_status(run_dir)["state"] == "done"
        assert (run_dir / "adapter" / "adapter_model.safetensors").stat().st_size > 10


# --- 4. resume is exact -------------------------------------------------------------------------------------------


def test_stop_and_resume_repeats_the_uninterrupted_run(tiny_model_dir, pairs_csv, tmp_path):
    """Same steps, learning rates, token counts (so the same batches) and losses as a run that never stopped.

    This holds because the adapter's random start is seeded from training.seed and transformers restores the
    RNG state and skips the batches already seen in the epoch on resume.
    """
    recipe = tiny_recipe(tiny_model_dir, "training.epochs=2")  # 12 rows, batch 4: 3 steps an epoch, 6 in all
    whole = train(recipe, pairs_csv, tmp_path / "whole", **QUIET)
    stop = threading.Event()

    def log(line: str) -> None:
        if line.startswith("step 4/"):  # the run stops at the end of step 5, mid-epoch: resume skips 2 batches
            stop.set()

    parted = train(recipe, pairs_csv, tmp_path / "parted", stop_event=stop, log=log)
    stopped_at = runs.read_status(parted)["step"]
    assert runs.read_status(parted)["state"] == "stopped" and 4 <= stopped_at < 6
    train(None, None, parted, resume=True, **QUIET)
    assert runs.read_status(parted)["state"] == "done"

    a, b = loss_rows(whole), loss_rows(parted)
    assert [m["step"] for m in a] == [m["step"] for m in b] == list(range(1, 7))
    assert [m["lr"] for m in a] == pytest.approx([m["lr"] for m in b], rel=1e-9)
    assert [m["tokens"] for m in a] == [m["tokens"] for m in b]
    assert b[stopped_at]["loss"] == pytest.approx(a[stopped_at]["loss"], rel=1e-6)  # the first step after resuming
    assert [m["loss"] for m in b] == pytest.approx([m["loss"] for m in a], rel=1e-6)


def test_gradient_accumulation_matches_a_bigger_batch(tiny_model_dir, pairs_csv, tmp_path, default_tokenizer):
    lengths = {(len(t["input_ids"]), sum(t["completion_mask"]))
               for t in (tokenize_example(default_tokenizer, e, "", 64) for e in load_data(pairs_csv).examples)}
    assert len(lengths) == 1, "the premise: equal-length examples, so no padding changes the average"
    first = {}
    for batch, accum in ((1, 4), (4, 1)):
        recipe = tiny_recipe(tiny_model_dir, f"training.batch_size={batch}", f"training.grad_accum={accum}",
                             "training.max_steps=1")
        run_dir = train(recipe, pairs_csv, tmp_path / f"b{batch}x{accum}", **QUIET)
        first[batch, accum] = loss_rows(run_dir)[0]
    assert first[1, 4]["loss"] == pytest.approx(first[4, 1]["loss"], rel=0.01)
    assert first[1, 4]["grad_norm"] == pytest.approx(first[4, 1]["grad_norm"], rel=0.01)


# --- 5. security --------------------------------------------------------------------------------------------------


@pytest.fixture
def confined(tmp_path) -> Path:
    root = tmp_path / "runs"
    (root / "good").mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "status.json").write_text("{}")
    (root / "escape").symlink_to(secret, target_is_directory=True)
    (root / "deep").symlink_to(root / "good" / ".", target_is_directory=True)
    (root / "good" / "sub").mkdir()
    (root / "down").symlink_to(root / "good" / "sub", target_is_directory=True)
    return root


@pytest.mark.parametrize("run_id", [
    "../secret", "..", "../", "..%2fsecret", "%2e%2e%2fsecret", "%2e%2e/secret", "..\\secret", "/etc",
    "{secret}", "escape", "good/../../secret", "good/sub", "down", "good\x00", "\x00", "good\x00/../../secret",
    "good\n", "~/secret", "file:///etc", "",
])
def test_run_ids_never_resolve_outside_the_runs_root(confined, run_id):
    run_id = run_id.replace("{secret}", str(confined.parent / "secret"))
    with pytest.raises(runs.RunNotFound):
        runs.resolve_run(run_id, confined)
    assert runs.resolve_run("good", confined) == (confined / "good").resolve()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([*"./\\%2eEfF0~\x00\n :", "good", "escape", "..", "secret"]), max_size=8).map("".join))
def test_any_run_id_resolves_inside_the_runs_root_or_not_at_all(confined, run_id):
    try:
        path = runs.resolve_run(run_id, confined)
    except runs.RunNotFound:
        return
    assert path.parent == confined.resolve() and path.is_dir()


def test_trust_remote_code_false_is_never_passed_as_true_and_the_token_never_lands_on_disk(
        tiny_model_dir, pairs_csv, tmp_path, monkeypatch):
    import transformers

    token = "hf_reliabilityTestSecret0123456789abcdef"
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", token)
    calls: list[tuple[str, dict]] = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM, transformers.AutoConfig):
        def spy(*args, _cls=cls, _original=cls.from_pretrained, **kwargs):
            calls.append((_cls.__name__, kwargs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    recipe = tiny_recipe(tiny_model_dir, "model.trust_remote_code=false", "training.max_steps=2",
                         "training.save_steps=1")
    run_dir = train(recipe, pairs_csv, tmp_path / "run", **QUIET)
    assert runs.read_status(run_dir)["state"] == "done"
    assert {name for name, _ in calls} >= {"AutoTokenizer", "AutoModelForCausalLM"}
    assert not [c for c in calls if c[1].get("trust_remote_code")], calls
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in files), "the checkpoints (pickled args included) are scanned"
    leaks = [p for p in files if token.encode() in p.read_bytes()]
    assert not leaks


def _calls(source: str, name: str) -> list[str]:
    """The text of every call to `name(` in the source, up to its closing parenthesis."""
    found = []
    for match in re.finditer(re.escape(name) + r"\(", source):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(source)):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            if depth == 0:
                break
        found.append(source[match.start(): end + 1])
    return found


def test_code_base_has_no_unsafe_loaders():
    sources = {p: p.read_text(encoding="utf-8") for p in sorted((REPO / "studio").rglob("*.py"))}
    assert len(sources) > 10
    problems = []
    for path, source in sources.items():
        for call in _calls(source, "torch.load"):
            if "weights_only=True" not in call:
                problems.append(f"{path}: {call}")
        for unsafe in ("yaml.load(", "yaml.unsafe_load", "yaml.full_load", "UnsafeLoader", "pickle.load",
                       "trust_remote_code=True"):
            if unsafe in source:
                problems.append(f"{path}: {unsafe}")
    assert not problems


# --- 6. from_dict never fails any other way -----------------------------------------------------------------------

_NAMES = sorted({*SECTIONS, *(f.name for cls in SECTIONS.values() for f in fields(cls))})
_keys = st.sampled_from(_NAMES) | st.text(max_size=6) | st.integers(-3, 3) | st.none() | st.booleans()
_numbers_as_text = st.from_regex(r"-?[0-9]{0,40}(\.[0-9]{0,5})?([eE]-?[0-9]{1,4})?", fullmatch=True)
_scalars = (st.none() | st.booleans() | st.integers() | st.integers(10**300, 10**400).map(lambda n: n * (-1) ** n)
            | st.floats() | st.text(max_size=12) | _numbers_as_text)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
                       max_leaves=10)
_section = st.dictionaries(st.sampled_from(_NAMES) | _keys, _values, max_size=6)
_raw = st.dictionaries(st.sampled_from(list(SECTIONS)) | _keys, _section | _values, max_size=5) | _values


@settings(max_examples=400, deadline=None)
@given(_raw)
def test_from_dict_returns_a_recipe_or_raises_recipe_error(raw):
    try:
        recipe = from_dict(raw)
    except RecipeError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    assert isinstance(recipe, Recipe)
    assert all(isinstance(p, str) for p in validate(recipe))
