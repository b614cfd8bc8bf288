"""Data tab, "Draft Q&A from a document": a manual in, reviewed question/answer pairs out.

The walk: upload a document -> its passages are counted -> a model (local, or an OpenAI-compatible endpoint)
drafts pairs -> the person edits and deletes rows in a table -> "Use these pairs" writes the table to a CSV in
the studio's folder and loads it as the training data. Nothing trains unreviewed: drafts reach the Data tab only
through that button. The endpoint's API key goes from the password box to the request and nowhere else.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import policy
from studio.data import DocumentError, read_document, split_passages
from studio.docqa import draft_pairs, write_pairs_csv
from studio.paths import studio_home
from studio.ui import MODEL_EVENTS, lang, md_escape, warm_imports

DOCUMENT_TYPES = [".txt", ".md", ".pdf", ".docx"]
COLUMNS = ["question", "answer"]


# ---- plain functions -------------------------------------------------------------------------------------------


def read_passages(path: str | None) -> tuple[list[str], str, str]:
    """(passages, document name, note) for an uploaded document."""
    if not path:
        return [], "", ""

    name = Path(path).name
    try:
        passages = split_passages(read_document(path))
    except DocumentError as exc:
        raise gr.Error(str(exc)) from None
    return passages, name, (f"**{md_escape(name)}**: {len(passages)} passage{'s' * (len(passages) != 1)} to draft "
                            "questions about.")


def draft(passages: list[str], model: str, endpoint: str, api_key: str, per_passage: int,
          max_new_tokens: int = 256, progress=gr.Progress()) -> tuple[pd.DataFrame, str]:
    """(table of drafted pairs, note with the dropped drafts' count) for the passages."""
    if not passages:
        raise gr.Error("Upload a document first.")
    model, endpoint, api_key = (model or "").strip() or "default", (endpoint or "").strip(), (api_key or "").strip()
    problem = policy.endpoint_problem(endpoint, "Endpoint URL") if endpoint else policy.base_problem(model)
    if problem:
        raise gr.Error(problem)
    max_new_tokens = policy.new_tokens(max_new_tokens)
    from studio.models import ModelError

    if not endpoint:
        warm_imports()
    chosen = lang.current()
    desc, unit = lang.translate("Drafting", chosen), lang.translate("passages", chosen)
    progress((0, len(passages)), desc=desc, unit=unit)
    try:
        with policy.model_turns.turn("the drafting"):
            result = draft_pairs(passages, model=model, endpoint=endpoint or None, api_key=api_key or None,
                                 per_passage=min(max(int(per_passage), 1), 5), max_new_tokens=max_new_tokens,
                                 progress=lambda done, total: progress((done, total), desc=desc, unit=unit))
    except ModelError as exc:
        raise gr.Error(str(exc)) from None
    frame = pd.DataFrame([[p["question"], p["answer"]] for p in result.pairs], columns=COLUMNS, dtype=str)
    messages = [m.replace(api_key, "***") if api_key else m for m in result.messages]
    lines = [f"**{len(result.pairs)} draft pair{'s' * (len(result.pairs) != 1)}** to review · "
             f"{result.dropped} dropped draft{'s' * (result.dropped != 1)}"]
    lines += [f"- {md_escape(m)}" for m in messages]
    lines.append("Read every pair against the document: fix wrong answers, delete rows you do not want (or clear "
                 "their question), then press **Use these pairs**.")
    return frame, "\n\n".join(lines)


def reviewed_pairs(frame: pd.DataFrame | None) -> tuple[list[dict[str, str]], int]:
    """The table's rows with both a question and an answer, and how many rows were left out for lacking one."""
    if frame is None or len(frame) == 0:
        return [], 0
    pairs, empty = [], 0
    for question, answer in frame.reindex(columns=COLUMNS).fillna("").astype(str).itertuples(index=False):
        if question.strip() and answer.strip():
            pairs.append({"question": question.strip(), "answer": answer.strip()})
        else:
            empty += 1
    return pairs, empty


def write_reviewed(frame: pd.DataFrame | None, source: str) -> tuple[Path, int, int]:
    """The reviewed pairs written to STUDIO_HOME/uploads as question,answer CSV: (path, pairs, rows left out)."""

    pairs, empty = reviewed_pairs(frame)
    if not pairs:
        raise gr.Error("No pair has both a question and an answer. Draft again, or type some pairs into the table.")
    folder = studio_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(source or "document").stem).strip("-")[:40] or "document"
    path = folder / f"{stem}-qa-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    write_pairs_csv(pairs, path)
    return path, len(pairs), empty


# ---- layout ----------------------------------------------------------------------------------------------------


@dataclass
class DocumentSection:
    table: gr.Dataframe
    source: gr.State
    use: gr.Button
    note: gr.Markdown


def build() -> DocumentSection:
    """The accordion's content; the Data tab wires "Use these pairs" to its own outputs."""
    passages, source = gr.State([]), gr.State("")
    gr.Markdown("No table of questions yet? Upload a manual or handbook: a model drafts question/answer pairs from "
                "it, you review them, and only the pairs you keep become training data.")
    with gr.Row():
        document = gr.File(label="Document (txt, md, pdf, docx)", file_types=DOCUMENT_TYPES, type="filepath",
                           scale=2, height=100)
        with gr.Column(scale=3):
            counted = gr.Markdown()
            with gr.Row():
                model = gr.Textbox(label="Drafting model", value="default",
                                   info="'default' (the built-in small model), a local model folder or a hub id; "
                                   "with an endpoint, the model name that server knows.")
                per_passage = gr.Slider(1, 5, value=3, step=1, label="Pairs per passage")
    with gr.Accordion("Use an OpenAI-compatible endpoint instead (optional; larger models draft better)", open=False):
        with gr.Row():
            endpoint = gr.Textbox(label="Endpoint URL", placeholder="http://localhost:8000/v1")
            api_key = gr.Textbox(label="API key", type="password", placeholder="used for this drafting only, never "
                                 "stored")
    draft_btn = gr.Button("Draft pairs", variant="primary")
    drafted_note = gr.Markdown()
    table = gr.Dataframe(label="Draft pairs: edit cells, delete rows you do not want", headers=COLUMNS,
                         datatype="str", interactive=True, wrap=True, max_height=420, column_widths=["45%", "55%"],
                         value=pd.DataFrame(columns=COLUMNS))
    use = gr.Button("Use these pairs as my training data")
    note = gr.Markdown()

    document.upload(read_passages, inputs=[document], outputs=[passages, source, counted], api_visibility="private")
    document.clear(lambda: ([], "", ""), outputs=[passages, source, counted], api_visibility="private")
    draft_btn.click(draft, inputs=[passages, model, endpoint, api_key, per_passage], outputs=[table, drafted_note],
                    **MODEL_EVENTS, api_visibility="private")
    return DocumentSection(table, source, use, note)
