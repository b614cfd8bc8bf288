"""A domain expert's first hour (#18), through the plain functions behind the page: every long step says what it
does, how far it is and how long is left; the verdict on a small upload is honest; nothing the user did is lost."""

from __future__ import annotations

import re
import time

from studio import runs


def test_the_train_tab_names_the_phase_and_the_wall_time_from_the_first_second():
    from studio.ui.train_tab import progress_html, status_markdown

    status = {"state": "queued", "phase": "drafting", "message": "Drafting rewrites: 3 of 26 done, about 40 s left.",
              "phases": [["waiting", 100.0], ["preparing", 101.0], ["drafting", 104.0]]}
    bar = progress_html(status, [], now=125.0)
    assert "Drafting extra examples" in bar and "25 s since Start" in bar and "step" not in bar
    text = status_markdown("run-1", status)
    assert "drafting extra examples" in text and "queued" not in text and "3 of 26" in text
    done = {"state": "done", "phase": "ended", "step": 6, "total": 6, "phases": status["phases"]}
    assert "since Start" not in progress_html(done, [], now=500.0)
    assert runs.duration(125) == "2 min 05 s" and runs.duration(7) == "7 s" and runs.duration(3725) == "1 h 02 min"


def test_evaluate_counts_questions_and_fills_rows_as_they_come(tiny_run):
    """Evaluate used to run minutes behind a bare spinner: now the first update is at once, each chunk counts
    "N of M done" with the time left, rows fill in, and the last update is the scored table."""
    from studio.evaluate import CHUNK_FIRST
    from studio.ui import eval_tab

    updates = list(eval_tab.evaluate_run(tiny_run, None, 8))
    lines = [text for text, _ in updates]
    assert lines[0].startswith("⏳ Reading the questions"), lines[0]
    total = len(updates[-1][1])
    assert total > CHUNK_FIRST
    assert any(f"0 of {total} done" in line for line in lines)
    counted = [line for line in lines if "left" in line]
    assert counted and f"{CHUNK_FIRST} of {total} done" in counted[0], counted
    assert len(updates[2][1]) == CHUNK_FIRST and len(updates[-2][1]) == total  # rows arrive chunk by chunk
    assert "Contains answer" in lines[-1] and "⏳" not in lines[-1]

    forgetting = list(eval_tab.check_forgetting(tiny_run))
    assert "0 of" in forgetting[0] and "General questions right" in forgetting[-1]


def test_both_chat_panes_show_the_question_at_once_and_the_waiting_one_says_why(tiny_run):
    from studio.ui import chat_tab

    updates = list(chat_tab.converse(tiny_run, "Who founded the ferry company?", [], [], [], 0.0, 8))
    base, sft, tuned, _ = updates[0]
    assert base[-1]["content"] == chat_tab.LOADING and "one after the other" in tuned[-1]["content"] and sft == []
    assert [m["role"] for m in base] == [m["role"] for m in tuned] == ["user", "assistant"]
    base, _, tuned, _ = updates[-1]
    assert "⏳" not in base[-1]["content"] and "⏳" not in tuned[-1]["content"]
    # A follow-up question sends the earlier turns, never the notices.
    again = list(chat_tab.converse(tiny_run, "And when?", base, [], tuned, 0.0, 4))
    assert len(again[-1][0]) == 4 and all("⏳" not in m["content"] for m in again[-1][2])


def test_a_small_upload_is_checked_on_rewordings_it_never_trained_on(tiny_model_dir, pairs_csv, tmp_path):
    """12 rows hold nothing out; the verdict must still test other wordings, never the training questions."""
    from studio.evaluate import REWORDED, evaluate_heldout, format_table
    from studio.question_forms import normalise
    from studio.train import train
    from tests.test_train import tiny_recipe

    run = train(tiny_recipe(tiny_model_dir, "data.eval_size=0", "data.question_forms=4", "data.replay=0",
                            "training.max_steps=2"),
                pairs_csv, tmp_path / "small", log=lambda _: None)
    status = runs.read_status(run)
    assert status["state"] == "done" and status["eval_examples"] == 0 and status["reworded_examples"] == 12
    reworded = {normalise(r["messages"][0]["content"]) for r in runs.read_jsonl(run / "data" / "reworded.jsonl")}
    taught = {normalise(r["messages"][0]["content"]) for name in ("train", "paraphrases", "question_forms")
              for r in runs.read_jsonl(run / "data" / f"{name}.jsonl")}
    assert len(reworded) == 12 and not reworded & taught
    assert len(runs.read_jsonl(run / "data" / "question_forms.jsonl")) == 48  # still 4 forms a question

    report = evaluate_heldout(run, max_new_tokens=8)
    assert report["source"] == REWORDED and len(report["rows"]) == 12
    assert normalise(report["rows"][0]["question"]) in reworded
    table = format_table(report)
    assert table.startswith("### Answers your questions asked in other words: ") and "of 12 (before training:" in table


def test_a_training_loss_near_zero_without_held_out_questions_warns_with_what_to_do():
    from studio.monitor import training_warnings

    rows = [{"step": i, "loss": loss, "total": 10} for i, loss in enumerate([2.0, 1.0, 0.5, 0.02, 0.01, 0.01], 1)]
    (warning,) = training_warnings(rows)
    assert "by heart" in warning and "fewer epochs" in warning
    assert training_warnings([{**r, "loss": r["loss"] + 0.5} for r in rows]) == []


def test_the_system_prompt_is_the_users_own_not_the_base_models_persona(tmp_path):
    """Sized to a file, the recipe gets a system prompt named after it; one the user set stays; the chat, the
    evaluation and the exports read the recipe's, so the base model's "I am SmolLM" line appears nowhere."""
    from studio.data import render_example
    from studio.defaults import size_to_data
    from studio.models import load_tokenizer
    from studio.recipe import Recipe

    data = tmp_path / "bakery_opening-hours_faq.csv"
    data.write_text("question,answer\nWhen do you open?,At 7.\n", encoding="utf-8")
    recipe = size_to_data(Recipe(), data)
    assert recipe.data.system_prompt == "You answer questions about bakery opening hours, briefly and exactly."
    kept = Recipe()
    kept.data.system_prompt = "Sei un assistente del forno."
    assert size_to_data(kept, data).data.system_prompt == "Sei un assistente del forno."
    assert size_to_data(Recipe(), data, explicit=["data.system_prompt="]).data.system_prompt == ""

    from studio.data import load_data

    example = load_data(data).examples[0]
    shown = "".join(text for text, _ in render_example(load_tokenizer("default", log=lambda _: None), example,
                                                       recipe.data.system_prompt, 256))
    assert "bakery opening hours" in shown and "SmolLM" not in shown


def test_a_kept_upload_is_found_by_its_token_and_a_crafted_token_reads_nothing(tmp_path, monkeypatch):
    from studio import uploads

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    source = tmp_path / "faq.csv"
    source.write_text("question,answer\nQ?,A.\n", encoding="utf-8")
    token = uploads.keep(source)
    assert uploads.find(token).read_text(encoding="utf-8") == source.read_text(encoding="utf-8")
    assert uploads.keep(source) == token and uploads.token_of(uploads.find(token)) == token
    (tmp_path / "home" / "secret.txt").write_text("no", encoding="utf-8")
    for crafted in ("../secret.txt", f"{token.split('/')[0]}/../../secret.txt", "/etc/passwd", 7, None,
                    {"token": token}, "0" * 20 + "/faq.csv"):
        assert uploads.find(crafted) is None, crafted


def test_a_document_dropped_on_the_qa_upload_points_at_drafting_pairs_from_it(tmp_path):
    from studio.ui import data_tab

    pdf = tmp_path / "handbook.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    out = data_tab.open_upload(str(pdf))
    assert "is a document" in out[1] and "Draft pairs from a document" in out[1]
    assert out[-1].open is True and len(out) == 10


def test_an_export_names_each_step_as_it_begins(tiny_run):
    from studio.ui import runs_tab

    updates = list(runs_tab.export(tiny_run, "merged"))
    notes = [note for _, note in updates]
    assert notes[0] == "⏳ Starting the export..."
    assert any(note.startswith("⏳ Step 1 of 3: loading the base model") for note in notes), notes
    assert any("Step 3 of 3: zipping" in note for note in notes) and notes[-1].startswith("✅ Ready in ")
    assert str(updates[-1][0]).endswith(".zip")


def test_a_form_problem_is_told_in_the_fields_own_label_with_the_fix():
    from studio.recipe import Recipe
    from studio.ui.model_tab import FIELDS, summarize, values_from_recipe

    values = values_from_recipe(Recipe())
    values[FIELDS.index(("training", "epochs"))] = None
    out = summarize(None, *values)
    labels = {field: update["label"] for field, update in zip(FIELDS, out[5:], strict=True)}
    assert labels[("training", "epochs")] == "⚠ Epochs: type a number here.", labels[("training", "epochs")]
    assert labels[("method", "r")] == "LoRA rank (r)" or not labels[("method", "r")].startswith("⚠")
    assert "Epochs: type a number here" in out[0] and "training.epochs" not in out[0]


def test_drafting_begins_when_the_data_loads_and_the_run_reuses_it(tiny_model_dir, pairs_csv, tmp_path, monkeypatch):
    """Start used to wait for a minute of drafting on new data; now the drafting starts at the data's load, and the
    run trains on it: at once when it is done, after waiting for it when not. Other settings cancel it."""
    from studio import service
    from studio.jobs import jobs
    from studio.predraft import predraft
    from tests.test_train import tiny_recipe

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    settings = ("data.paraphrases=2", "data.replay=2", "data.eval_size=0", "training.max_steps=2")
    recipe = tiny_recipe(tiny_model_dir, *settings)
    assert service.draft_ahead(recipe, str(pairs_csv)).startswith("Drafting the extra examples now")
    assert service.draft_ahead(recipe, str(pairs_csv)).startswith("Already drafting") or not predraft.running()
    run = service.run_dir(service.start(tiny_recipe(tiny_model_dir, *settings), str(pairs_csv)))
    jobs.wait(120)
    log = (run / "train.log").read_text(encoding="utf-8")
    assert re.search(r"Reused \d+ rewritten questions", log) and "Drafting 2 rewrites" not in log, log
    assert runs.read_status(run)["state"] == "done"
    assert not list((tmp_path / "home" / "predraft").iterdir())  # the scratch folder goes with the thread

    # Other settings at Start: what was drafted ahead is not what the run needs, so it is cancelled.
    assert service.draft_ahead(tiny_recipe(tiny_model_dir, *settings, "training.seed=5"), str(pairs_csv))
    other = service.run_dir(service.start(tiny_recipe(tiny_model_dir, *settings, "training.seed=6"), str(pairs_csv)))
    jobs.wait(120)
    assert not predraft.running() and "Drafting 2 rewrites" in (other / "train.log").read_text(encoding="utf-8")


def test_a_start_while_the_last_run_only_evaluates_skips_that_evaluation(tiny_model_dir, pairs_csv, tmp_path,
                                                                        monkeypatch):
    """The evaluation after training is extra: a new Start is not refused for it, it is told to skip the rest."""
    import threading
    import time

    from studio import jobs as jobs_module
    from studio import service
    from studio.jobs import jobs
    from tests.test_train import tiny_recipe

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    evaluating = threading.Event()

    def slow_evaluation(run_dir, progress=None, turn=None, **_):
        if evaluating.is_set():  # the second run's: quick
            return {}
        evaluating.set()
        for done in range(600):  # a minute of questions, unless told to stop
            progress(done, 600, [])
            time.sleep(0.1)
        return {}

    monkeypatch.setattr(jobs_module, "evaluate_heldout", slow_evaluation)
    settings = ("data.paraphrases=0", "data.replay=0", "data.eval_size=0", "data.question_forms=1",
                "training.max_steps=1")
    first = service.run_dir(service.start(tiny_recipe(tiny_model_dir, *settings), str(pairs_csv)))
    assert evaluating.wait(120)
    assert jobs.active() is None  # trained: the page enables Start again
    started = time.monotonic()
    second = service.run_dir(service.start(tiny_recipe(tiny_model_dir, *settings), str(pairs_csv)))
    assert time.monotonic() - started < 10
    assert "held-out evaluation was skipped" in runs.read_status(first)["message"]
    jobs.wait(120)
    assert runs.read_status(second)["state"] == "done"


def test_a_streamed_handler_runs_each_step_in_whatever_context_gradio_gives_it():
    """gradio runs each step of a generator handler in a context of its own: the guard's caller must be set and
    reset within a step (across steps, the reset raised and every streamed event ended with an "Error" pill)."""
    import contextvars

    import pytest

    from studio import policy
    from studio.ui.guard import guarded

    def handler():
        yield policy.caller.get()
        yield policy.caller.get()

    steps = guarded(handler)()
    seen = [contextvars.copy_context().run(next, steps) for _ in range(2)]
    assert seen[0] == seen[1] and seen[0] != "local"
    with pytest.raises(StopIteration):
        contextvars.copy_context().run(next, steps)
    assert policy.caller.get() == "local"


def test_a_restarted_studio_opens_the_file_the_browser_had_loaded(tmp_path, pairs_csv):
    """The browser keeps only the token: a new process on the same STUDIO_HOME (an app restart) finds the kept copy
    and opens it as it was."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "home")}
    keep = ("import sys; from studio.ui import data_tab; state = data_tab.open_data(sys.argv[1], None, 'qa.csv')[0];"
            " print(data_tab.remembered(state)['token'])")
    token = subprocess.run([sys.executable, "-c", keep, str(pairs_csv)], env=env, capture_output=True, text=True,
                           check=True, cwd=Path(__file__).parents[1]).stdout.strip().splitlines()[-1]
    reopen = ("import sys; from studio.ui import data_tab; out = data_tab.restore({'token': sys.argv[1]});"
              " print(out[0]['examples'] if isinstance(out[0], dict) else 'nothing')")
    shown = subprocess.run([sys.executable, "-c", reopen, token], env=env, capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1]).stdout.strip().splitlines()[-1]
    assert shown == "12"


def test_a_model_loaded_while_the_estimate_builds_its_meta_copy_waits_and_has_real_weights(tiny_model_dir,
                                                                                           monkeypatch):
    """Drafting ahead loads the base model while the Model tab's estimate builds its copy on the meta device;
    transformers builds under process-wide switches, so the two used to mix ("Cannot copy out of meta tensor" in
    every later run). The load waits for the meta build (models.build_lock) and gets real weights."""
    import threading

    import transformers

    from studio import estimate
    from studio.models import load_model

    order: list[str] = []
    building = threading.Event()
    original = transformers.AutoModelForCausalLM.from_config

    def slow_meta_build(*args, **kwargs):
        building.set()
        time.sleep(1.0)  # the load below starts meanwhile
        model = original(*args, **kwargs)
        order.append("meta copy built")
        return model

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", slow_meta_build)
    estimate._meta_counts.cache_clear()
    meta = threading.Thread(target=estimate._meta_counts, args=(str(tiny_model_dir), "lora", 4, "all-linear", False))
    meta.start()
    assert building.wait(30)
    model = load_model(str(tiny_model_dir), "lora", log=lambda _: None)
    order.append("model loaded")
    meta.join(30)
    estimate._meta_counts.cache_clear()
    assert order == ["meta copy built", "model loaded"]
    assert not any(p.is_meta for p in model.parameters())
