"""Corrections become data (studio/corrections.py): marks kept, revisions written beside the upload, preference pairs,
and training again from scratch or from the run's adapter (loop.train_again)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from studio import corrections, loop, runs, service
from studio.corrections import CorrectionError

FOUNDED = "In what year was the Brindlewick Ferry Company founded?"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_wrong_mark_needs_a_correction_that_differs(tiny_run):
    path = service.run_dir(tiny_run)
    with pytest.raises(CorrectionError, match="Type the right answer"):
        corrections.record(path, FOUNDED, "In 1900.", right=False)
    with pytest.raises(CorrectionError, match="model's own answer"):
        corrections.record(path, FOUNDED, "In 1900.", right=False, correction=" In 1900. ")
    with pytest.raises(CorrectionError, match="question is empty"):
        corrections.record(path, "  ", "x", right=True)
    with pytest.raises(service.UserError, match="Type the right answer"):
        loop.mark_answer(tiny_run, FOUNDED, "In 1900.", right=False)
    with pytest.raises(service.UserError, match="The correction is 4,001 characters long"):
        loop.mark_answer(tiny_run, FOUNDED, "In 1900.", right=False, correction="x" * 4001)
    assert not (path / corrections.FILE).exists(), "nothing kept from a refused mark"


def test_marks_become_a_revision_beside_the_upload_and_preference_pairs(tiny_run, tmp_path):
    path = service.run_dir(tiny_run)
    upload = path / "data" / "sample_qa.csv"
    before = _sha(upload)
    loop.mark_answer(tiny_run, FOUNDED, "It was founded in 1900.", right=False, correction="First: 1870.")
    loop.mark_answer(tiny_run, FOUNDED.upper(), "It was founded in 1900.", right=False,
                        correction="It was founded in 1873.")  # the latest mark of a question counts
    loop.mark_answer(tiny_run, "Does the ferry take bicycles?", "No.", right=False,
                        correction="Yes, bicycles travel free.", source="chat")
    loop.mark_answer(tiny_run, "Who founded the Brindlewick Ferry Company?", "Vessa Ondrake.", right=True)
    marks = {m["question"].lower(): m for m in loop.corrections_table(tiny_run)}
    assert marks[FOUNDED.lower()]["correction"] == "It was founded in 1873."
    assert marks["who founded the brindlewick ferry company?"]["verdict"] == "right"

    first = corrections.revise(path)
    assert _sha(upload) == before, "the upload is never touched"
    rows = [json.loads(line) for line in first.read_text().splitlines()]
    answers = {r["messages"][0]["content"].lower(): r["messages"][-1]["content"] for r in rows}
    assert answers[FOUNDED.lower()] == "It was founded in 1873."  # edited in place
    assert answers["does the ferry take bicycles?"] == "Yes, bicycles travel free."  # added
    (manifest,) = corrections.revisions(path)
    assert manifest["sha256"] == _sha(first) and manifest["upload"] == "sample_qa.csv"
    assert [a["question"] for a in manifest["added"]] == ["Does the ferry take bicycles?"]
    assert [e["after"] for e in manifest["edited"]] == ["It was founded in 1873."]
    assert manifest["rows"] == len(rows) == 41

    second = corrections.revise(path)
    assert second != first and first.exists()
    assert corrections.revisions(path)[1]["previous"] == first.name
    listed = loop.revisions_table(tiny_run)  # listed and downloadable, every way in
    assert [(r["file"], r["rows"], r["added"], r["edited"]) for r in listed] == [
        (first.name, 41, 1, 1), (second.name, 41, 1, 1)]
    copy = Path(loop.revision_file(tiny_run, first.name))
    assert copy.read_bytes() == first.read_bytes() and copy.parent != first.parent
    with pytest.raises(service.UserError, match="no data revision named"):
        loop.revision_file(tiny_run, "../recipe.yaml")

    pairs = corrections.preference_rows(path)
    assert {"prompt": "Does the ferry take bicycles?", "chosen": "Yes, bicycles travel free.",
            "rejected": "No."} in pairs and len(pairs) == 2
    out = corrections.write_preferences(path, tmp_path / "prefs.csv")
    assert out.read_text().splitlines()[0] == "prompt,chosen,rejected"


def _wait(run_id: str) -> dict:
    """The run's status once its job thread (training, then the held-out evaluation) has ended."""
    from studio.jobs import jobs

    jobs.wait(180)
    return runs.read_status(service.run_dir(run_id))


def test_train_again_from_scratch_and_from_the_runs_adapter(tiny_run):
    path = service.run_dir(tiny_run)
    loop.mark_answer(tiny_run, FOUNDED, "In 1900.", right=False, correction="It was founded in 1873.")
    fresh = loop.train_again(tiny_run)
    assert _wait(fresh)["state"] == "done"
    fresh_dir = service.run_dir(fresh)
    assert "It was founded in 1873." in next((fresh_dir / "data").glob("rev-*.jsonl")).read_text()
    assert not (fresh_dir / "init_adapter").exists()
    report = json.loads((fresh_dir / "eval.json").read_text())
    asked = {r["question"]: r for r in report["rows"] if r.get("corrected")}
    assert asked[FOUNDED]["answer"] == "It was founded in 1873."  # the corrected question, asked after training
    from studio.compare import per_question

    change = {r["question"]: r for r in per_question(path, fresh_dir)}[FOUNDED]
    assert change["change"] in ("improved", "still wrong") and change["before"] == "In 1900."

    continued = loop.train_again(tiny_run, continue_training=True)
    assert _wait(continued)["state"] == "done"
    continued_dir = service.run_dir(continued)
    assert (continued_dir / "init_adapter" / "adapter_config.json").exists(), "started from the run's adapter"
    assert "init_adapter: init_adapter" in (continued_dir / "recipe.yaml").read_text()
    assert len(corrections.revisions(path)) >= 2

    with pytest.raises(service.UserError, match="mark some first"):
        loop.train_again(fresh)  # a run with no marks of its own


def test_correct_and_train_again_from_the_cli(tiny_run):
    import subprocess
    import sys
    from pathlib import Path

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=300,
                              cwd=Path(__file__).resolve().parent.parent)

    path = service.run_dir(tiny_run)
    marked = cli("correct", str(path), "Do dogs travel free?", "--answer", "No.", "--correction", "Dogs travel free.")
    assert marked.returncode == 0 and json.loads(marked.stdout)["verdict"] == "wrong"
    refused = cli("correct", str(path), "Do dogs travel free?", "--answer", "No.", "--correction", "No.")
    assert refused.returncode == 2 and "model's own answer" in refused.stderr
    before = cli("revisions", str(path), "--json")
    assert before.returncode == 0
    again = cli("train-again", str(path), "--continue")
    assert again.returncode == 0, again.stderr[-2000:]
    new = Path(again.stdout.strip().splitlines()[-1])
    assert runs.read_status(new)["state"] == "done"
    assert (new / "init_adapter" / "adapter_config.json").exists()
    assert "Dogs travel free." in next((new / "data").glob("rev-*.jsonl")).read_text()
    after = cli("revisions", str(path))
    assert after.returncode == 0 and len(after.stdout.splitlines()) == len(json.loads(before.stdout)) + 1


def test_the_corrections_as_preference_pairs_from_the_cli_and_the_app(tiny_run, tmp_path):
    import csv
    import subprocess
    import sys
    from pathlib import Path

    path = service.run_dir(tiny_run)
    loop.mark_answer(tiny_run, "Is there a night ferry?", "No.", right=False, correction="Yes, at 23:00.")
    out = tmp_path / "prefs.csv"
    proc = subprocess.run([sys.executable, "-m", "studio", "preferences", str(path), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert {"prompt": "Is there a night ferry?", "chosen": "Yes, at 23:00.", "rejected": "No."} in rows
    from studio.data import load_preferences

    assert load_preferences(out).pairs, "the file trains with the existing preference path"
    assert Path(loop.preference_file(tiny_run)).read_text() == out.read_text()


def test_the_chat_tabs_last_reply_is_marked(tiny_run):
    import gradio as gr

    from studio.ui.chat_tab import edit_last, mark_last

    history = [{"role": "user", "content": "Is the café open on boats?"}, {"role": "assistant", "content": "No."},
               {"role": "user", "content": "Can I bring a kayak?"}, {"role": "assistant", "content": "Never."}]
    assert edit_last(history) == "Never."
    assert "Kept" in mark_last(tiny_run, history, "wrong", "Yes, kayaks travel on the car deck.")
    entry = loop.corrections_table(tiny_run)[-1]
    assert (entry["question"], entry["answer"], entry["source"]) == ("Can I bring a kayak?", "Never.", "chat")
    with pytest.raises(gr.Error, match="Ask a question first"):
        mark_last(tiny_run, [], "right", "")
