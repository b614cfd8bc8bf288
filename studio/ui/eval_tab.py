"""Evaluate tab: did it learn? Base vs tuned on held-out (or uploaded) questions, and a forgetting check.

All scoring lives in `studio.evaluate`; this module only picks the run, calls it, and shows the tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import gradio as gr
import pandas as pd

from studio import loop, policy, runs, service
from studio.card import write_card
from studio.evaluate import Progress, evaluate_file, evaluate_heldout, forgetting_check, format_forgetting, format_table
from studio.ui import MODEL_EVENTS, judge_section, md_escape, streamed, warn

ROW_COLUMNS = ["⚠ tuned states a wrong value", "question", "reference", "base answer", "tuned answer", "base ✓",
               "tuned ✓"]


def _rows_frame(report: dict) -> pd.DataFrame:
    """One row a question; answers that state a wrong number or code ("says 28; the reference says 27") first."""
    rows = []
    for r in report.get("rows", []):
        hits = ["yes" if r.get(f"{side}_scores", {}).get("contains") else "" for side in ("base", "tuned")]
        wrong = r.get("tuned_scores", {}).get("mismatch") or ""
        rows.append([wrong, r["question"], r.get("key") or r.get("answer", ""), r["base"], r["tuned"], *hits])
    rows.sort(key=lambda row: not row[0])  # stable: the rest keep their order
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


def _show(report: dict) -> tuple[str, pd.DataFrame]:

    # The table text is ours except the message; escape nothing structural, only the free text.
    return format_table({**report, "message": md_escape(report.get("message", ""))}), _rows_frame(report)


def load_saved(run_id: str | None) -> tuple[str, pd.DataFrame, str]:
    """What was evaluated before (the post-run held-out evaluation, a forgetting check), if anything."""
    if not run_id:
        return "Pick a finished run.", _rows_frame({}), ""
    try:
        run_dir = service.run_dir(run_id)
    except service.UserError as exc:
        return str(exc), _rows_frame({}), ""
    table, frame = ("No evaluation yet: press **Evaluate** above.", _rows_frame({}))
    if (run_dir / "eval.json").exists():
        table, frame = _show(json.loads((run_dir / "eval.json").read_text(encoding="utf-8")))
    forgetting = ""
    if (run_dir / "forgetting.json").exists():

        forgetting = format_forgetting(json.loads((run_dir / "forgetting.json").read_text(encoding="utf-8")))
    warnings = runs.read_status(run_dir).get("warnings") or []
    if warnings:
        forgetting = "\n".join(f"⚠ {md_escape(w)}" for w in warnings) + "\n\n" + forgetting
    return table, frame, forgetting


def _picked_run(run_id: str | None):
    """The chosen run's folder, or a plain error for the user."""
    if not run_id:
        raise gr.Error("Pick a finished run first.")
    try:
        return service.run_dir(run_id)
    except service.UserError as exc:
        raise gr.Error(str(exc)) from None


def progress_line(what: str, done: int, total: int, seconds: float) -> str:
    """"⏳ Answering with the base and the tuned model: 8 of 26 questions, about 40 s left (12 s so far)"."""
    if not done:
        return f"⏳ Loading the model, then {what}: 0 of {total} done ({seconds:.0f} s so far)."
    left = seconds / done * (total - done)
    return f"⏳ {what[0].upper()}{what[1:]}: {done} of {total} done, about {runs.duration(left)} left " \
           f"({runs.duration(seconds)} so far)."


def evaluate_run(run_id: str | None, eval_file: str | None, max_new_tokens: int) -> Iterator[tuple]:
    run_dir = _picked_run(run_id)
    max_new_tokens = policy.new_tokens(max_new_tokens)
    if runs.final_weights(run_dir) is None:
        raise gr.Error("This run has no trained weights yet; wait for it to finish or resume it.")

    def turn():  # one per chunk of questions: a chat asked meanwhile waits for a chunk, not the whole evaluation
        return policy.model_turns.turn("the evaluation")

    def work(progress: Progress) -> dict:
        if not eval_file:
            return evaluate_heldout(run_dir, max_new_tokens=max_new_tokens, progress=progress, turn=turn)
        report = evaluate_file(run_dir, eval_file, max_new_tokens=max_new_tokens,
                               max_questions=policy.limits().eval_questions, progress=progress, turn=turn)
        report["source"] = f"your file ({md_escape(eval_file.rsplit('/', 1)[-1])})"
        runs.write_json_atomic(run_dir / "eval.json", report)
        return report

    def show(done: int, total: int, rows: list, seconds: float) -> tuple:
        line = progress_line("answering with the base and the tuned model", done, total, seconds)
        return line + "\n\nThe scores come when every question is answered.", _rows_frame({"rows": rows})

    yield "⏳ Reading the questions and loading the model...", _rows_frame({})
    report = yield from streamed(work, show)
    write_card(run_dir)
    yield _show(report)


def check_forgetting(run_id: str | None) -> Iterator[str]:
    run_dir = _picked_run(run_id)

    def work(progress: Progress) -> dict:
        with policy.model_turns.turn("the forgetting check"):
            return forgetting_check(run_dir, progress=progress)

    report = yield from streamed(work, lambda done, total, _, seconds: progress_line(
        "asking general questions", done, total, seconds))
    write_card(run_dir)
    if report.get("flag"):
        warn(report["message"])
    yield format_forgetting(report)


# ---- corrections: the expert's marks become the next run's data --------------------------------------------------

AGAIN_MODES = [("From scratch: a fresh adapter learns your data with the corrections in it", "scratch"),
               ("Continue: this run's adapter keeps training on it, keeping what it learned", "continue")]


def pick_row(evt: gr.SelectData) -> tuple[str, str, str]:
    """A clicked row of the answers table: its question and tuned answer, and the answer again to edit."""
    row = list(evt.row_value or [])
    if len(row) < len(ROW_COLUMNS):
        return "", "", ""
    question, tuned = str(row[ROW_COLUMNS.index("question")]), str(row[ROW_COLUMNS.index("tuned answer")])
    return question, tuned, tuned


def marks_summary(run_id: str | None) -> str:
    if not run_id:
        return ""
    marks = loop.corrections_table(run_id)
    if not marks:
        return "No answers marked yet: click a row of the table above."
    wrong = sum(m["verdict"] == "wrong" for m in marks)
    return (f"{len(marks)} answer{'s' * (len(marks) != 1)} marked: {wrong} wrong with the right answer, "
            f"{len(marks) - wrong} right. The wrong ones go into the next **Train again**.")


def save_mark(run_id: str | None, question: str, answer: str, verdict: str, correction: str) -> tuple[str, str]:
    _picked_run(run_id)
    loop.mark_answer(run_id, question, answer, verdict == "right", correction)  # a plain error if it is not right
    return marks_summary(run_id), ""


def train_again(run_id: str | None, mode: str) -> str:
    _picked_run(run_id)
    new = loop.train_again(run_id, continue_training=mode == "continue")
    return (f"✅ Started run **{md_escape(new)}** on your data with the corrections in it. Watch it on the Train tab; "
            "when it is done, pick both runs under **Compare runs** on the Runs & export tab.")


def preferences(run_id: str | None) -> str:
    _picked_run(run_id)
    return loop.preference_file(run_id)


def revision_list(run_id: str | None) -> tuple:
    """(the run's data revisions as a table, the picker of one to download)."""
    try:
        rows = loop.revisions_table(run_id) if run_id else []
    except service.UserError:
        rows = []
    frame = pd.DataFrame([[r["file"], r["rows"], r["added"], r["edited"], r["sha256"][:12], r["when"]] for r in rows],
                         columns=["revision", "rows", "added", "edited", "sha256", "when"]).astype(str)
    names = [r["file"] for r in rows]
    return frame, gr.Dropdown(choices=names, value=names[-1] if names else None)


def refresh_runs():
    choices = service.runs_with_weights()
    return gr.Dropdown(choices=choices, value=choices[0] if choices else None)


def build(tab: gr.Tab) -> None:
    gr.Markdown("### 5. Did it learn?\nThe base and the tuned model answer the same questions; the scores say "
                "which one knows your material. Without a file, the run's held-out questions are used (or, when "
                "nothing was held out, its own training questions as a recall check).")
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=[], scale=3)
        refresh = gr.Button("↻ Refresh", scale=1)
    with gr.Row():
        eval_file = gr.File(label="Your own questions (optional): question column, answer column optional",
                            file_types=[".csv", ".tsv", ".xlsx", ".json", ".jsonl"], type="filepath", height=110)
        with gr.Column():
            max_new = gr.Slider(16, 256, value=96, step=8, label="Max new tokens per answer")
            go = gr.Button("Evaluate", variant="primary")
            forget = gr.Button("Forgetting check (general questions)")
    table = gr.Markdown()
    rows = gr.Dataframe(headers=ROW_COLUMNS, datatype="str", interactive=False, wrap=True, max_height=420,
                        label="Answers side by side")
    forgetting = gr.Markdown()
    with gr.Accordion("Correct the answers, then train again", open=False):
        gr.Markdown("Click a row of the table to mark its tuned answer. For a wrong one, type the right answer "
                    "(the box starts with the model's answer to edit).")
        with gr.Row():
            mark_question = gr.Textbox(label="Question", interactive=False, scale=2)
            mark_answer = gr.Textbox(label="The tuned model's answer", interactive=False, scale=2)
            verdict = gr.Radio(["right", "wrong"], value="wrong", label="This answer is", scale=1)
        correction = gr.Textbox(label="The right answer", lines=2)
        save = gr.Button("Save this mark")
        marks_note = gr.Markdown()
        with gr.Row():
            again_mode = gr.Radio(AGAIN_MODES, value="scratch", label="Train again", scale=3)
            again = gr.Button("Train again with my corrections", variant="primary", scale=1)
        again_note = gr.Markdown()
        with gr.Row():
            prefs = gr.Button("The wrong answers as preference pairs (.csv, for DPO/ORPO)", scale=1)
            prefs_file = gr.File(label="Preference pairs", interactive=False, height=70, scale=2)
        revisions = gr.Dataframe(label="Revisions of this run's data (your upload is never changed)", datatype="str",
                                 interactive=False, max_height=200)
        with gr.Row():
            revision = gr.Dropdown(label="Revision", choices=[], scale=2)
            revision_btn = gr.Button("Download this revision (.jsonl)", scale=1)
            revision_file = gr.File(label="Revision", interactive=False, height=70, scale=2)

    judge_section.build(run)
    run.change(revision_list, inputs=[run], outputs=[revisions, revision], api_visibility="private")
    again.click(revision_list, inputs=[run], outputs=[revisions, revision], api_visibility="private")
    revision_btn.click(lambda run_id, name: loop.revision_file(run_id or "", name or ""), inputs=[run, revision],
                       outputs=[revision_file], api_visibility="private")

    tab.select(refresh_runs, outputs=[run], api_visibility="private")
    rows.select(pick_row, outputs=[mark_question, mark_answer, correction], api_visibility="private")
    run.change(marks_summary, inputs=[run], outputs=[marks_note], api_visibility="private")
    save.click(save_mark, inputs=[run, mark_question, mark_answer, verdict, correction],
               outputs=[marks_note, correction], api_visibility="private")
    again.click(train_again, inputs=[run, again_mode], outputs=[again_note], api_visibility="private")
    prefs.click(preferences, inputs=[run], outputs=[prefs_file], api_visibility="private")
    refresh.click(refresh_runs, outputs=[run], api_visibility="private")
    run.change(load_saved, inputs=[run], outputs=[table, rows, forgetting], api_visibility="private")
    go.click(evaluate_run, inputs=[run, eval_file, max_new], outputs=[table, rows], **MODEL_EVENTS,
             api_visibility="private")
    forget.click(check_forgetting, inputs=[run], outputs=[forgetting], **MODEL_EVENTS,
                 api_visibility="private")
