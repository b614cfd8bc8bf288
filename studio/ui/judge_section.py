"""Evaluate tab, "Judge the answers with a larger model": the optional judge's grades beside the exact-fact check.

A thin layer over `loop.judge` (which the CLI's `python -m studio judge` and `/api_judge` call too). The API key
goes from the password box to the request and nowhere else; the box is cleared after each use.
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr
import pandas as pd

from studio import loop, service
from studio.judge import configured, read, summary_line
from studio.runs import duration
from studio.ui import md_escape, streamed

COLUMNS = ["grade", "question", "the judge's reason"]


def _frame(report: dict) -> pd.DataFrame:
    order = {"wrong": 0, "partly": 1, "?": 2, "correct": 3}  # the answers to read first, first
    rows = sorted(report.get("rows", []), key=lambda r: order.get(r["grade"], 2))
    return pd.DataFrame([[r["grade"], r["question"], r["reason"]] for r in rows], columns=COLUMNS)


def saved(run_id: str | None) -> tuple[str, pd.DataFrame]:
    """The grades a judge gave this run before, if any."""
    try:
        report = read(service.run_dir(run_id)) if run_id else {}
    except service.UserError:
        report = {}
    return md_escape(summary_line(report)), _frame(report)


def judge(run_id: str | None, endpoint: str, model: str, api_key: str) -> Iterator[tuple]:
    """(summary, grades, key box): counts the answers as the judge grades them, then shows every grade."""

    def show(done: int, total: int, seconds: float) -> tuple:
        return f"⏳ The judge graded {done} of {total} answers ({duration(seconds)} so far)...", gr.skip(), ""

    yield "⏳ Asking the judge...", gr.skip(), ""
    report = yield from streamed(lambda step: loop.judge(run_id or "", endpoint, model, api_key, step), show)
    line = summary_line(report) + " The exact-fact check above stays the measure; read the wrong and partly ones."
    yield "✅ " + md_escape(line), _frame(report), ""


def build(run: gr.Dropdown) -> None:
    endpoint_set, model_set = configured()
    with gr.Accordion("Judge the answers with a larger model (optional)", open=False):
        gr.Markdown("<small>A larger model behind an OpenAI-compatible endpoint (Ollama, vLLM, a company gateway) "
                    "grades each tuned answer against the reference: correct, partly or wrong, with a reason. It "
                    "catches a right answer in other words and a multi-part answer missing a part; it is shown "
                    "beside the exact-fact check, not instead of it.</small>")
        with gr.Row():
            endpoint = gr.Textbox(label="Judge endpoint", scale=2, interactive=not service.shared_mode(),
                                  placeholder=endpoint_set or "http://localhost:11434/v1",
                                  info="Set by this studio's operator." if endpoint_set else None)
            model = gr.Textbox(label="Judge model", scale=1, placeholder=model_set or "qwen2.5:7b-instruct")
            key = gr.Textbox(label="API key (if the endpoint needs one)", type="password", scale=1)
        go = gr.Button("Judge the tuned answers")
        note = gr.Markdown()
        grades = gr.Dataframe(headers=COLUMNS, datatype="str", interactive=False, wrap=True, max_height=360,
                              label="The judge's grades")
    run.change(saved, inputs=[run], outputs=[note, grades], api_visibility="private")
    go.click(judge, inputs=[run, endpoint, model, key], outputs=[note, grades, key], api_visibility="private")
