"""Preference data and DPO/ORPO runs on the tiny random Llama (2 layers, 16 wide) with the real tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from studio import runs
from studio.data import load_preferences
from studio.recipe import Recipe, apply_overrides, validate
from studio.train import train

SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample_preferences.csv"
QUIET = {"log": lambda _: None}


def tiny_recipe(model_dir, objective: str, *overrides: str) -> Recipe:
    return apply_overrides(Recipe(), [
        f"model.base={model_dir}", f"method.objective={objective}", "data.max_length=96", "data.eval_size=0",
        "training.batch_size=4", "training.learning_rate=0.01", "training.max_steps=3", "training.save_steps=2",
        "training.precision=fp32", "method.r=4", "method.alpha=8", *overrides,
    ])


# ---- data ------------------------------------------------------------------------------------------------------


def test_sample_file_loads_every_row():
    report = load_preferences(SAMPLE)
    assert report.ok and not report.problems, report.summary()
    assert len(report.pairs) == report.rows_total == 24
    assert report.columns == {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}
    first = report.pairs[0]
    assert first.row == 1 and "1873" in first.chosen and first.chosen != first.rejected
    assert first.conversation()["prompt"] == [{"role": "user", "content": first.prompt}]
    assert report.to_json()["rows"] == 24 and "24 of 24" in report.summary()


def test_synonyms_bad_rows_and_warnings_are_reported_by_row(tmp_path):
    path = tmp_path / "prefs.csv"
    path.write_text("Question,Preferred,Dispreferred\n"
                    "Q1?,good one,bad one\n"
                    ",good,bad\n"                      # row 2: no prompt
                    "Q3?,,\n"                          # row 3: both answers empty
                    "Q4?,same,same\n"                  # row 4: teaches nothing -> warning, kept
                    "Q1?,good one,bad one\n",          # row 5: duplicate of row 1 -> warning, skipped
                    encoding="utf-8")
    report = load_preferences(path)
    assert report.columns == {"prompt": "Question", "chosen": "Preferred", "rejected": "Dispreferred"}
    assert [p.row for p in report.pairs] == [1, 4]
    assert {p.row for p in report.errors} == {2, 3}
    assert "Row 3: the chosen and the rejected are empty" in " ".join(p.message for p in report.errors)
    warnings = {p.row: p.message for p in report.warnings}
    assert "same" in warnings[4] and "repeats row 1" in warnings[5]
    assert report.ok and "2 of 5" in report.summary() and "row 2 prompt empty" in report.summary()


def test_missing_columns_and_overrides(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"ask": "Hi?", "yes": "Hello.", "no": "Go away."}\n', encoding="utf-8")
    report = load_preferences(path)
    assert not report.ok and "chosen" in report.summary() and "ask, yes, no" in report.summary()
    report = load_preferences(path, columns={"prompt": "ask", "chosen": "yes", "rejected": "no"})
    assert report.ok and report.file_type == "jsonl" and report.pairs[0].rejected == "Go away."
    assert "not found" in load_preferences(tmp_path / "nope.csv").summary().lower()


def test_recipe_fields_validate():
    assert validate(apply_overrides(Recipe(), ["method.objective=dpo"])) == []
    problems = "\n".join(validate(apply_overrides(Recipe(), [
        "method.objective=ppo", "method.beta=0", "method.init_adapter=some-run"])))
    assert "method.objective" in problems and "method.beta" in problems
    assert "method.init_adapter" not in problems  # objective is invalid, so no second complaint about it
    problems = "\n".join(validate(apply_overrides(Recipe(), ["method.init_adapter=x", "method.name=full",
                                                              "method.objective=orpo"])))
    assert "lora or qlora" in problems
    assert validate(apply_overrides(Recipe(), ["method.init_adapter=x"])) == [], "SFT may continue a run's adapter"
    assert "method.init_adapter" in "\n".join(validate(apply_overrides(Recipe(), ["method.init_adapter=x",
                                                                                     "method.name=full"])))


# ---- training --------------------------------------------------------------------------------------------------


def _adapter(run_dir):
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def dpo_run(tiny_model_dir, tmp_path_factory):
    """One DPO run through studio.train.train, so the dispatch is exercised too."""
    return train(tiny_recipe(tiny_model_dir, "dpo"), SAMPLE, tmp_path_factory.mktemp("dpo") / "run", **QUIET)


def test_dpo_run_writes_the_folder_with_reward_metrics(dpo_run):
    status = runs.read_status(dpo_run)
    assert status["state"] == "done", status
    assert status["recipe"]["objective"] == "dpo" and status["step"] == 3
    for name in ("recipe.yaml", "metrics.jsonl", "data/sample_preferences.csv", "data/train.jsonl",
                 "adapter/adapter_config.json", "checkpoints/checkpoint-2"):
        assert (dpo_run / name).exists(), name
    assert not (dpo_run / "adapter" / "ref").exists(), "TRL's frozen reference copy must not be saved"
    rows = runs.read_metrics(dpo_run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("loss", "lr", "rewards_chosen", "rewards_rejected", "reward_margin", "elapsed", "eta"):
        assert all(key in r for r in rows), key
    assert rows[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy == reference at the start
    assert any(v.abs().sum() > 0 for k, v in _adapter(dpo_run).items() if "lora_B" in k)


def test_chat_works_on_a_preference_run(dpo_run):
    from studio.chat import ChatModel

    model = ChatModel(dpo_run)
    assert model.has_tuned and model.method == "lora"
    assert isinstance(model.reply("When was the ferry company founded?", max_new_tokens=3), str)


def test_orpo_run(tiny_model_dir, tmp_path):
    run_dir = train(tiny_recipe(tiny_model_dir, "orpo", "method.beta=0.2"), SAMPLE, tmp_path / "run", **QUIET)
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status
    rows = runs.read_metrics(run_dir)
    assert len(rows) == 3 and all("reward_margin" in r and "rewards_chosen" in r for r in rows)
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_dpo_starts_from_an_sft_runs_adapter(tiny_model_dir, tmp_path):
    qa = tmp_path / "qa.csv"
    qa.write_text("question,answer\n" + "".join(f"Q{i}?,A{i}.\n" for i in range(8)), encoding="utf-8")
    sft = train(tiny_recipe(tiny_model_dir, "sft"), qa, tmp_path / "sft", **QUIET)
    assert runs.read_status(sft)["state"] == "done"
    run_dir = train(tiny_recipe(tiny_model_dir, "dpo", f"method.init_adapter={sft}", "method.r=8"), SAMPLE,
                    tmp_path / "dpo", **QUIET)
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status
    assert (run_dir / "init_adapter" / "adapter_config.json").exists()  # resume never needs the SFT run again
    assert "init_adapter: init_adapter" in (run_dir / "recipe.yaml").read_text()
    before, after = _adapter(sft), _adapter(run_dir)
    assert before.keys() == after.keys()  # the SFT adapter's shape (r=4), not method.r=8
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # The reference is the SFT model itself, so DPO starts at exactly log 2 here too.
    assert runs.read_metrics(run_dir)[0]["loss"] == pytest.approx(0.6931, abs=1e-3)


def test_bad_init_adapter_fails_plainly(tiny_model_dir, tmp_path, runs_root):
    run_dir = train(tiny_recipe(tiny_model_dir, "dpo", "method.init_adapter=no-such-run"), SAMPLE,
                    tmp_path / "run", **QUIET)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "no run or folder named 'no-such-run'" in status["message"]
    other = tmp_path / "other"
    (other / "adapter").mkdir(parents=True)
    (other / "adapter" / "adapter_config.json").write_text("{}")
    apply_overrides(Recipe(), ["model.base=default"]).save(other / "recipe.yaml")
    run_dir = train(tiny_recipe(tiny_model_dir, "orpo", f"method.init_adapter={other}"), SAMPLE, tmp_path / "r2",
                    **QUIET)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "was trained on 'default'" in status["message"]


def test_resume_dispatches_on_the_saved_objective(tiny_model_dir, tmp_path):
    from studio.recipe import load
    from studio.train import TrainingFailed

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tiny_recipe(tiny_model_dir, "orpo").save(run_dir / "recipe.yaml")
    assert load(run_dir / "recipe.yaml").method.objective == "orpo"  # what a resume reads back
    # Without a checkpoint the resume is refused before either path starts, and the run stays as it was.
    runs.write_status(run_dir, "interrupted", "The studio stopped while this run was training.")
    before = runs.read_status(run_dir)
    with pytest.raises(TrainingFailed, match="no checkpoint"):
        train(None, None, run_dir, resume=True, **QUIET)
    assert runs.read_status(run_dir) == before


def test_stop_then_resume_finishes(tiny_model_dir, tmp_path):
    import threading

    stop = threading.Event()

    def log(message: str) -> None:
        if message.startswith("step 1/"):
            stop.set()

    run_dir = train(tiny_recipe(tiny_model_dir, "dpo"), SAMPLE, tmp_path / "run", stop_event=stop, log=log)
    assert runs.read_status(run_dir)["state"] == "stopped" and runs.last_checkpoint(run_dir) is not None
    train(None, None, run_dir, resume=True, **QUIET)
    status = runs.read_status(run_dir)
    assert status["state"] == "done" and status["step"] == 3, status
    assert [r["step"] for r in runs.read_metrics(run_dir)] == [1, 2, 3]
