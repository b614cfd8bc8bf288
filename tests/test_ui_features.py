"""The UI's preference tuning and document drafting, through the plain functions behind the buttons (no browser).

Preference files open as preference sets and switch the form to DPO; check-data says the same; the loss plot
carries the rewards; a DPO run started from an SFT run gets the three-way chat; drafted pairs reach the Data tab
only through "Use these pairs", as a CSV in the studio's folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from studio.recipe import Recipe

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PREFERENCES = ASSETS / "sample_preferences.csv"
QA = ASSETS / "sample_qa.csv"


def _form(recipe: Recipe | None = None) -> list:
    from studio.ui.model_tab import values_from_recipe

    return values_from_recipe(recipe or Recipe())


def _value(values, section: str, name: str):
    from studio.ui.model_tab import FIELDS

    return values[FIELDS.index((section, name))]


# ---- Data tab ----------------------------------------------------------------------------------------------------


def test_a_preference_file_opens_as_a_preference_set():
    from studio.ui.data_tab import open_data

    state, summary, *dropdowns, preview, problems, _ = open_data(str(PREFERENCES))
    assert state["format"] == "preference" and state["examples"] == 24
    assert "format **preference**" in summary and "24 of 24 preference rows usable" in summary
    assert [d.label for d in dropdowns] == ["Prompt column", "Chosen column", "Rejected column", "System column"]
    assert [d.value for d in dropdowns[:3]] == ["prompt", "chosen", "rejected"]
    assert list(preview.columns) == ["prompt", "chosen", "rejected"]
    assert problems["problem"].tolist() == ["No problems found."]

    # Remapping keeps it a preference set; a Q&A file is still Q&A, with its own labels back.
    again = open_data(state["path"], {"prompt": "prompt", "chosen": "rejected", "rejected": "chosen"}, "x.csv",
                      "preference")
    assert again[0]["format"] == "preference" and again[0]["columns"]["chosen"] == "rejected"
    qa_state, _, *qa_dropdowns, _, _, _ = open_data(str(QA))
    assert qa_state["format"] != "preference" and qa_dropdowns[0].label == "Question column"


def test_a_file_without_answers_or_preferences_stays_a_qa_problem(tmp_path):
    from studio.ui.data_tab import open_data

    path = tmp_path / "odd.csv"
    path.write_text("prompt\nhello\n", encoding="utf-8")
    state, summary, *_ = open_data(str(path))
    assert state["format"] != "preference" and "Could not tell which column holds the answers" in summary


def test_training_checks_the_data_against_the_objective():
    from studio import service as api

    recipe = Recipe()
    with pytest.raises(api.UserError, match="preference file .* set the objective to dpo or orpo"):
        api.check_data(str(PREFERENCES), recipe)
    recipe.method.objective = "dpo"
    assert len(api.check_data(str(PREFERENCES), recipe).pairs) == 24
    with pytest.raises(api.UserError, match="preference data cannot be trained on with dpo"):
        api.check_data(str(QA), recipe)


# ---- Model & method tab --------------------------------------------------------------------------------------------


def test_preference_data_switches_the_form_to_dpo_and_back():
    from studio.ui.data_tab import open_data
    from studio.ui.model_tab import FIELDS, recipe_from_values, size_to

    pref_state = open_data(str(PREFERENCES))[0]
    *values, note = size_to(pref_state, *_form())
    assert _value(values, "method", "objective") == "dpo" and "DPO" in note
    assert _value(values, "training", "learning_rate") <= 1e-4
    recipe, problems = recipe_from_values(values, pref_state)
    assert problems == [] and recipe.method.objective == "dpo"

    # The user may pick ORPO; sft on preference data is named as a problem, as any other field's.
    values[FIELDS.index(("method", "objective"))] = "orpo"
    assert size_to(pref_state, *values)[-1] == ""  # ORPO is kept
    sft = _form()
    assert any("preference file" in p and p.startswith("method.objective")
               for p in recipe_from_values(sft, pref_state)[1])

    # Q&A data again: back to SFT, start-from run cleared.
    qa_state = open_data(str(QA))[0]
    *values, note = size_to(qa_state, *values)
    assert _value(values, "method", "objective") == "sft" and _value(values, "method", "init_adapter") == ""
    assert "SFT" in note


def test_start_from_run_lists_finished_sft_lora_runs_and_checks_the_choice(runs_root):
    from studio import runs
    from studio import service as api
    from studio.ui.model_tab import adapter_choices, recipe_from_values

    def fake_run(name: str, state: str, objective: str | None, adapter: bool) -> Path:
        path = runs_root / name
        (path / "adapter").mkdir(parents=True) if adapter else path.mkdir(parents=True)
        if adapter:
            (path / "adapter" / "adapter_config.json").write_text("{}")
        recipe = {"base": "default", "method": "lora"} | ({"objective": objective} if objective else {})
        runs.write_status(path, state, recipe=recipe)
        Recipe().save(path / "recipe.yaml")
        return path

    fake_run("20250101-000001-sft", "done", None, True)
    fake_run("20250101-000002-dpo", "done", "dpo", True)
    fake_run("20250101-000003-running", "running", None, False)
    assert api.sft_adapter_runs() == ["20250101-000001-sft"]
    assert [v for _, v in adapter_choices()] == ["", "20250101-000001-sft"]

    recipe = Recipe()
    recipe.method.objective, recipe.method.init_adapter = "dpo", "20250101-000001-sft"
    assert recipe_from_values(_form(recipe))[1] == []
    recipe.method.init_adapter = "20250101-000003-running"
    assert any("no finished adapter" in p for p in recipe_from_values(_form(recipe))[1])


# ---- Train and Chat tabs -------------------------------------------------------------------------------------------


def test_the_loss_plot_shows_the_rewards_of_a_preference_run():
    from studio.ui.train_tab import loss_figure

    metrics = [{"step": s, "loss": 0.7 - 0.1 * s, "reward_margin": 0.2 * s, "rewards_chosen": 0.1 * s,
                "rewards_rejected": -0.1 * s} for s in range(1, 4)]
    fig = loss_figure(metrics)
    by_name = {t.name: t for t in fig.data}
    assert {"train loss", "reward margin", "chosen reward", "rejected reward"} <= set(by_name)
    assert by_name["reward margin"].yaxis == "y2" and list(by_name["reward margin"].y) == pytest.approx([0.2, 0.4, 0.6])
    assert fig.layout.yaxis2.overlaying == "y"
    assert [t.name for t in loss_figure([{"step": 1, "loss": 1.0}]).data] == ["train loss"]  # SFT: loss only


def test_a_dpo_run_from_an_sft_run_gets_the_three_way_chat(runs_root):
    from studio import service as api
    from studio.ui.chat_tab import has_sft_side, panes_for

    run = runs_root / "20250101-000004-dpo"
    (run / "init_adapter").mkdir(parents=True)
    (run / "init_adapter" / "adapter_config.json").write_text("{}")
    recipe = Recipe()
    recipe.method.objective, recipe.method.init_adapter = "dpo", "init_adapter"
    recipe.save(run / "recipe.yaml")
    assert api.sft_start(run.name) == run / "init_adapter"
    sft_pane, tuned_pane = panes_for(run.name)
    assert has_sft_side(run.name) and sft_pane.visible is True and "Preference-tuned" in tuned_pane.label

    plain = runs_root / "20250101-000005-dpo"
    plain.mkdir()
    recipe.method.init_adapter = ""
    recipe.save(plain / "recipe.yaml")
    assert not has_sft_side(plain.name) and panes_for(plain.name)[0].visible is False
    assert not has_sft_side("no-such-run")

    # Held-out questions of a preference run come from its prompts, answered by the chosen reply.
    (plain / "data").mkdir()
    row = {"prompt": [{"role": "user", "content": "Q?"}], "chosen": [{"role": "assistant", "content": "Good."}],
           "rejected": [{"role": "assistant", "content": "Bad."}], "row": 2}
    (plain / "data" / "eval.jsonl").write_text(json.dumps(row) + "\n")
    assert api.held_out_examples(plain.name) == [("Q?", "Good.")]


# ---- check-data CLI ------------------------------------------------------------------------------------------------


def test_check_data_reports_a_preference_file(capsys, tmp_path):
    from studio.cli import main

    assert main(["check-data", str(PREFERENCES)]) == 0
    out = capsys.readouterr().out
    assert "Format:  preference" in out and "24 of 24 preference rows usable" in out
    assert main(["check-data", "--json", str(PREFERENCES)]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "preference"
    odd = tmp_path / "odd.csv"
    odd.write_text("prompt\nhello\n", encoding="utf-8")
    assert main(["check-data", str(odd)]) == 2


# ---- Draft Q&A from a document --------------------------------------------------------------------------------------


MANUAL = """# The ferry

The MV Saltwren leaves Quillonmere at 6:40 every morning. The crossing to Hestrel Point takes 155 minutes.

# Tickets

Tickets cost 12 crowns for adults. Children under six travel free.
"""


class FakeChat:
    """Stands in for the drafting model: two pairs (one a repeat) and one broken draft per passage."""

    def generate_batch(self, prompts, tuned, max_new_tokens, system_prompt, batch_size):
        return [f"Q: What is fact {i}?\nA: Fact {i}.\nQ: What is fact {i}?\nA: Again.\nQ: Orphan question?"
                for i, _ in enumerate(prompts)]


def test_draft_review_use(tmp_path, monkeypatch):
    import studio.chat
    from studio.ui import data_tab, document_section

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(studio.chat, "get_chat_model", lambda *a, **k: FakeChat())
    doc = tmp_path / "manual.md"
    doc.write_text(MANUAL, encoding="utf-8")
    passages, source, counted = document_section.read_passages(str(doc))
    assert source == "manual.md" and f"{len(passages)} passage" in counted and passages

    frame, note = document_section.draft(passages, "default", "", "", 3, 16)
    assert list(frame.columns) == ["question", "answer"] and len(frame) == 1  # fact 0 once; the rest repeats
    assert "dropped draft" in note

    # The review: one row edited, one typed in, one left without an answer (left out, counted).
    frame.loc[0, "answer"] = "Fact zero, checked."
    frame = pd.concat([frame, pd.DataFrame([["When does the Saltwren leave?", "At 6:40."], ["Half a row", ""]],
                                           columns=["question", "answer"])], ignore_index=True)
    state, summary, *_, use_note = data_tab.use_pairs(frame, source)
    written = Path(state["path"])  # the copy kept for a reload, of the reviewed file written to STUDIO_HOME/uploads
    assert written.parent.parent == tmp_path / "home" / "kept-data" and written.name.startswith("manual-qa-")
    assert len(list((tmp_path / "home" / "uploads").glob("manual-qa-*.csv"))) == 1
    assert written.read_text(encoding="utf-8").splitlines() == [
        "question,answer", "What is fact 0?,\"Fact zero, checked.\"", "When does the Saltwren leave?,At 6:40."]
    assert state["examples"] == 2 and "2 of 2 rows usable" in summary
    assert "2 reviewed pairs" in use_note and "1 row without a question or an answer left out" in use_note

    import gradio as gr

    with pytest.raises(gr.Error, match="No pair has both"):
        data_tab.use_pairs(pd.DataFrame(columns=["question", "answer"]), source)


def test_endpoint_failures_never_show_the_key_and_shared_studios_refuse_endpoints(monkeypatch):
    import gradio as gr

    from studio.ui import document_section

    frame, note = document_section.draft(["Some passage."], "m", "http://127.0.0.1:9/v1", "sk-secret-123", 2)
    assert len(frame) == 0 and "Could not reach the endpoint" in note and "sk-secret-123" not in note
    monkeypatch.setenv("STUDIO_SHARED", "1")
    with pytest.raises(gr.Error, match="turned off on a shared studio"):
        document_section.draft(["Some passage."], "m", "http://127.0.0.1:9/v1", "", 2)


def test_draft_with_a_real_tiny_model(tiny_model_dir):
    from studio.docqa import draft_pairs

    seen = []
    result = draft_pairs(["The ferry leaves at 6:40."], model=str(tiny_model_dir), per_passage=1, max_new_tokens=4,
                         progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 1)]  # random weights draft noise; what matters is that the local path runs end to end
    assert all(set(p) == {"question", "answer", "passage"} for p in result.pairs)


# ---- the app -------------------------------------------------------------------------------------------------------


def test_build_app_has_the_new_sections():
    from studio.ui.app import build_app

    labels = {c.get("props", {}).get("label") for c in build_app().get_config_file()["components"]}
    assert {"Objective", "Beta", "Start from run", "Document (txt, md, pdf, docx)", "API key",
            "SFT run (where DPO/ORPO started)"} <= labels


def test_old_downloads_are_pruned_and_fresh_ones_kept(tmp_path, monkeypatch):
    import os
    import time

    from studio import paths

    monkeypatch.setattr(paths.tempfile, "gettempdir", lambda: str(tmp_path))
    folder = paths.downloads_dir()
    old_zip, old_dir, fresh = folder / "run-merged-1.zip", folder / "run-merged-2", folder / "run-adapter-3.zip"
    old_zip.write_bytes(b"x")
    old_dir.mkdir()
    (old_dir / "model.safetensors").write_bytes(b"x")
    fresh.write_bytes(b"x")
    past = time.time() - 2 * paths.DOWNLOAD_MAX_AGE_S
    for entry in (old_zip, old_dir):
        os.utime(entry, (past, past))
    assert paths.prune_downloads() == 2
    assert not old_zip.exists() and not old_dir.exists() and fresh.exists()


def test_train_buttons_are_enabled_only_when_they_apply():
    """Start always (while a run trains it queues); Stop while the shown run is active; Resume for a stopped run with
    a checkpoint while nothing trains."""
    from studio.ui.train_tab import button_states, start_label

    assert button_states({}, training=False, resumable=False, demo=False) == (True, False, False)
    assert button_states({"state": "running"}, training=True, resumable=False, demo=False) == (True, True, False)
    assert button_states({"state": "stopping"}, training=True, resumable=False, demo=False) == (True, False, False)
    assert button_states({"state": "stopped"}, training=False, resumable=True, demo=False) == (True, False, True)
    assert button_states({"state": "stopped"}, training=True, resumable=True, demo=False) == (True, False, False)
    assert (start_label(True), start_label(False)) == ("Add to the queue", "Start training")
    assert button_states({"state": "stopped"}, training=False, resumable=True, demo=True) == (False, False, False)
