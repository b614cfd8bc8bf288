"""Data tab: load a file, confirm the column mapping, see the problems, the lengths and one example as trained.

Everything shown here comes from `studio.data`; this module only turns a `DataReport` into tables,
a histogram and highlighted text. A file with prompt/chosen/rejected columns and no answer column is a
preference set (`studio.data.preferences`): the state remembers `format: "preference"` and the Model & method
tab switches to DPO. Cell values are user data: they go into text-typed tables and
escaped Markdown, never into rendered HTML.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import uploads
from studio.data import (
    detect_preferences,
    load_data,
    load_preferences,
    render_example,
    shared_prefix_length,
    token_lengths,
)
from studio.dataset_export import export_alpaca_json, export_openai_jsonl
from studio.paths import SAMPLE_DATA, SAMPLE_PREFERENCES, downloads_dir
from studio.service import base_problem, max_upload_bytes
from studio.ui import document_section, md_escape, warm_imports

ROLES = ("question", "answer", "context", "system")
PREFERENCE_ROLES = ("prompt", "chosen", "rejected", "system")  # the same four dropdowns, relabelled
FILE_TYPES = [".csv", ".tsv", ".xlsx", ".json", ".jsonl"]
PROMPT, ANSWER = "prompt (not trained)", "answer (trained)"
COLOR_MAP = {PROMPT: "#d1d5db", ANSWER: "#86efac"}


# ---- plain functions -------------------------------------------------------------------------------------------


def read(path: str, columns: dict | None = None):
    """The file's report, parsed once per file version and column mapping: the example view, the lengths and the
    sizing all ask for it again on every change of the form."""
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        mtime = 0.0
    return _read(str(path), mtime, json.dumps(columns or {}, sort_keys=True), max_upload_bytes())


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime: float, columns_json: str, max_bytes: int):
    return load_data(path, columns=json.loads(columns_json) or None, max_bytes=max_bytes)


def read_preferences(path: str, columns: dict | None = None):

    return load_preferences(path, columns=columns or None, max_bytes=max_upload_bytes())


def is_preference(state: dict | None) -> bool:
    return bool(state) and state.get("format") == "preference"


@functools.lru_cache(maxsize=4)
def cached_tokenizer(base: str):
    from studio.models import load_tokenizer

    return load_tokenizer(base, log=lambda _: None)


@functools.lru_cache(maxsize=8)
def _lengths(path: str, mtime: float, columns_json: str, base: str, system_prompt: str) -> tuple[int, ...]:

    report = read(path, json.loads(columns_json))
    return tuple(token_lengths(cached_tokenizer(base), report.examples, system_prompt))


def example_lengths(state: dict | None, base: str, system_prompt: str) -> list[int]:
    """Token lengths of every usable example (cached: the estimate asks on every keystroke)."""
    if not state or is_preference(state):
        return []
    path = state["path"]
    return list(_lengths(path, Path(path).stat().st_mtime, json.dumps(state.get("columns") or {}, sort_keys=True),
                         base.strip() or "default", system_prompt or ""))


@functools.lru_cache(maxsize=8)
def prefix_length(base: str, system_prompt: str) -> int:
    """Tokens every example starts with, which CPU training computes once a batch (for the time estimate)."""

    return shared_prefix_length(cached_tokenizer(base.strip() or "default"), system_prompt or "")


def report_markdown(report, name: str, fmt: str | None = None) -> str:
    if not report.file_type:
        return f"**{md_escape(name)}**: {md_escape(report.summary())}"
    mapping = ", ".join(f"{role} ← `{md_escape(col)}`" for role, col in report.columns.items())
    fmt = md_escape(fmt or report.format)
    lines = [f"**{md_escape(name)}** · {md_escape(report.file_type)} · format **{fmt}**",
             f"{'✅' if report.ok else '❌'} {md_escape(report.summary())}"]
    if mapping:
        lines.append(f"Columns: {mapping}")
    return "\n\n".join(lines)


def preview_frame(report) -> pd.DataFrame:
    """The first rows as the file has them, all as text."""
    frame = pd.DataFrame(report.preview, dtype=str).fillna("")
    return frame if not frame.empty else pd.DataFrame({"(no rows)": []})


def problems_frame(report) -> pd.DataFrame:
    rows = [{"row": "" if p.row is None else str(p.row), "level": p.level, "problem": p.message}
            for p in report.problems]
    return pd.DataFrame(rows or [{"row": "", "level": "", "problem": "No problems found."}])


def lengths_figure(lengths: list[int], max_length: int):
    import plotly.graph_objects as go

    cut = sum(n > max_length for n in lengths)
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=40, marker_color="#60a5fa", name="examples"))
    fig.add_vline(x=max_length, line_dash="dash", line_color="#dc2626",
                  annotation_text=f"max_length {max_length}", annotation_position="top right")
    title = (f"{cut} of {len(lengths)} examples longer than max_length would be cut" if cut
             else f"All {len(lengths)} examples fit in max_length")
    fig.update_layout(title=title, xaxis_title="tokens per example", yaxis_title="examples", height=300,
                      margin={"l": 40, "r": 20, "t": 50, "b": 40}, showlegend=False, bargap=0.05)
    return fig


def example_spans(base: str, state: dict | None, index: int, system_prompt: str, max_length: int
                  ) -> list[tuple[str, str]]:
    """Example `index` (1-based) exactly as the model sees it, each run labelled trained or not."""

    report = read(state["path"], state.get("columns"))
    if not report.examples:
        return []
    example = report.examples[max(0, min(int(index or 1), len(report.examples)) - 1)]
    runs = render_example(cached_tokenizer(base.strip() or "default"), example, system_prompt or "", int(max_length))
    return [(text, ANSWER if trained else PROMPT) for text, trained in runs]


def open_data(path: str | None, columns: dict | None = None, name: str | None = None, fmt: str = "") -> tuple:
    """(state, summary, 4 mapping dropdowns, preview, problems, example slider) for the file at `path`.

    A file the Q&A reader finds no answer column in, but with prompt/chosen/rejected columns, opens as a
    preference set (so does any file with `fmt="preference"`, as when its preference columns are remapped).
    """
    if not path:
        raise gr.Error("Choose a file first.")
    name = name or Path(path).name
    if Path(path).is_file() and not uploads.is_kept(path):  # a copy that a reload or a restart finds again
        path = str(uploads.find(uploads.keep(path, name)))
    report = read(path, None if fmt == "preference" else columns)  # the preview is the file's rows either way
    preferences = None
    if fmt == "preference":
        preferences = read_preferences(path, columns)
    elif not columns:

        preferences = detect_preferences(path, report, max_upload_bytes())
    found, roles = (preferences, PREFERENCE_ROLES) if preferences is not None else (report, ROLES)
    count = len(preferences.pairs) if preferences is not None else len(report.examples)
    state = {"path": str(path), "name": name, "columns": dict(columns or {}), "examples": count,
             "token": uploads.token_of(path),
             "format": "preference" if preferences is not None else report.format}
    choices = [("(none)", "")] + [(c, c) for c in found.available_columns]
    dropdowns = [gr.Dropdown(label=f"{role.capitalize()} column", choices=choices, value=found.columns.get(role, ""),
                             interactive=True) for role in roles]
    if preferences is not None:
        summary = report_markdown(preferences, name, "preference") + (
            "\n\nPairs of a good and a worse answer: train them with **DPO** or **ORPO** (the Model & method tab "
            "switches to DPO). Best after an SFT run on your Q&A: pick it under *Start from run*.")
        slider = gr.Slider(minimum=1, maximum=2, value=1, step=1, interactive=False)
        return (state, summary, *dropdowns, preview_frame(report), problems_frame(preferences), slider)
    slider = gr.Slider(minimum=1, maximum=max(len(report.examples), 2), value=1, step=1,
                       interactive=len(report.examples) > 1)
    return (state, report_markdown(report, name), *dropdowns, preview_frame(report), problems_frame(report), slider)


def open_upload(path: str | None) -> tuple:
    """The Data tab's outputs for an upload, and the document section's accordion: a document (PDF, Word, text)
    is not a table of pairs, so the summary points at the section below that drafts pairs from it, and opens it."""
    if path and Path(path).suffix.lower() in document_section.DOCUMENT_TYPES:
        note = (f"**{md_escape(Path(path).name)}** is a document, not a table of questions and answers. Studio can "
                "draft pairs from it for you to review: use **Draft pairs from a document**, opened just below.")
        return (gr.skip(), note, *[gr.skip()] * (len(ROLES) + 3), gr.Accordion(open=True))
    return (*open_data(path), gr.skip())


def use_pairs(frame: pd.DataFrame | None, source: str) -> tuple:
    """(the Data tab's outputs for the written file, note): the reviewed pairs become the training data."""
    path, count, empty = document_section.write_reviewed(frame, source)
    left_out = f" {empty} row{'s' * (empty != 1)} without a question or an answer left out." if empty else ""
    note = f"✅ {count} reviewed pair{'s' * (count != 1)} loaded as your training data (see above).{left_out}"
    return (*open_data(str(path), name=path.name), note)


def analyse(state: dict | None, base: str, system_prompt: str, max_length: int, index: int) -> tuple:
    """(length histogram, highlighted example, note) for the loaded data under the current model settings."""
    if not state or not state.get("examples"):
        return None, [], ""
    if is_preference(state):
        return None, [], ("Token lengths and the example view are for Q&A files; preference pairs are cut to "
                          "max_length as a prompt plus one answer.")
    if base_problem(base):
        return None, [], md_escape(base_problem(base))
    warm_imports()
    try:
        lengths = example_lengths(state, base, system_prompt)
        spans = example_spans(base, state, index, system_prompt, max_length)
    except Exception as exc:  # noqa: BLE001 - e.g. a hub id without network: say so, keep the rest of the tab
        return None, [], f"Cannot load the tokenizer of '{md_escape(base)}': {md_escape(exc)}"
    cut = sum(n > max_length for n in lengths)
    note = (f"⚠️ {cut} example{'s' * (cut != 1)} would be cut at max_length {max_length}: raise it on the "
            "Model & method tab, or shorten those rows." if cut else "")
    return lengths_figure(lengths, int(max_length)), spans, note


# ---- layout ----------------------------------------------------------------------------------------------------


@dataclass
class DataTab:
    state: gr.State
    example_index: gr.Slider
    length_plot: gr.Plot
    rendered: gr.HighlightedText
    length_note: gr.Markdown
    loaded: list  # events after which the data changed; app.py chains the analysis and the sizing to them
    saved: gr.BrowserState  # what was loaded, kept in the browser for a reload: {token, columns, format}
    outputs: list


def remembered(state: dict | None) -> dict | None:
    """What the browser keeps of the loaded data: the kept copy's token and the choices made on it."""
    if not state or not state.get("token"):
        return None
    return {"token": state["token"], "columns": state.get("columns") or {}, "format": state.get("format", "")}


def restore(saved: dict | None) -> tuple:
    """On page load: the data this browser had loaded, opened again as it was; nothing when there was none or its
    copy is gone (the page then says "No data loaded yet", as on a first visit)."""
    path = uploads.find((saved or {}).get("token")) if isinstance(saved, dict) else None
    if path is None:
        return tuple(gr.skip() for _ in range(len(ROLES) + 5))
    columns = saved.get("columns") if isinstance(saved.get("columns"), dict) else None
    fmt = "preference" if saved.get("format") == "preference" else ""
    try:
        return open_data(str(path), columns if columns or fmt else None, path.name, fmt)
    except Exception:  # noqa: BLE001 - a file that no longer reads as it did: start clean rather than fail the page
        return tuple(gr.skip() for _ in range(len(ROLES) + 5))


def export_data(state: dict | None, fmt: str) -> str:
    """The loaded examples (with the column mapping applied) in OpenAI chat JSONL or Alpaca JSON."""
    if not state or not state.get("examples"):
        raise gr.Error("Load a file with usable rows first.")
    if is_preference(state):
        raise gr.Error("These exports are for Q&A files; a preference file is already in the prompt/chosen/rejected "
                       "form hosted DPO APIs take.")

    report = read(state["path"], state.get("columns"))
    out_dir = downloads_dir()
    stem = Path(state.get("name") or state["path"]).stem
    if fmt == "openai":
        out = out_dir / f"{stem}-openai.jsonl"
        export_openai_jsonl(report.examples, out)
    else:
        out = out_dir / f"{stem}-alpaca.json"
        export_alpaca_json(report.examples, out)
    return str(out)


def build() -> DataTab:
    state = gr.State(None)
    gr.Markdown("### 1. Your data\nA file of questions and answers: CSV, TSV, Excel, JSON or JSONL. "
                "Columns named like *question*/*answer* (or *instruction*/*output*, *prompt*/*completion*, "
                "chat *messages*) are found on their own.")
    with gr.Row():
        # Documents are accepted here too, only to point at the section that drafts pairs from them: a PDF dropped
        # here used to get gradio's bare "Invalid file type".
        upload = gr.File(label="Data file", file_types=FILE_TYPES + document_section.DOCUMENT_TYPES, type="filepath",
                         scale=3)
        with gr.Column(scale=1):
            sample = gr.Button("Load sample (40 ferry Q&A pairs)")
            preference_sample = gr.Button("Load preference sample (24 chosen/rejected pairs)", size="sm")
            summary = gr.Markdown("No data loaded yet.")
    with gr.Accordion("No Q&A file yet? Draft pairs from a document (txt, md, pdf, docx)", open=False) as drafting:
        document = document_section.build()
    with gr.Row():
        mapping = [gr.Dropdown(label=f"{role.capitalize()} column", choices=[("(none)", "")], value="",
                               interactive=False) for role in ROLES]
    preview = gr.Dataframe(pd.DataFrame({"Load a file above to see its first rows here": []}),
                           label="Preview (first rows, as in the file)", datatype="str", interactive=False,
                           wrap=True, max_height=320)
    problems = gr.Dataframe(pd.DataFrame({"row": [], "level": [], "problem": []}),
                            label="Problems (row numbers as in the file)", datatype="str", interactive=False,
                            wrap=True, max_height=240, column_widths=["8%", "10%", "82%"])
    with gr.Row():
        with gr.Column():
            length_plot = gr.Plot(label="Token lengths")
            length_note = gr.Markdown()
        with gr.Column():
            example_index = gr.Slider(label="Example", minimum=1, maximum=2, step=1, value=1, interactive=False)
            rendered = gr.HighlightedText(label="As the model sees it (only the green part is learned)",
                                          color_map=COLOR_MAP, show_legend=True, combine_adjacent=True)

    with gr.Accordion("Export this data for a hosted fine-tuning API", open=False):
        with gr.Row():
            openai_btn = gr.Button("OpenAI chat JSONL")
            alpaca_btn = gr.Button("Alpaca JSON")
        exported = gr.File(label="Exported data", interactive=False, height=90)
    openai_btn.click(lambda st: export_data(st, "openai"), inputs=[state], outputs=[exported],
                     api_visibility="private")
    alpaca_btn.click(lambda st: export_data(st, "alpaca"), inputs=[state], outputs=[exported],
                     api_visibility="private")

    outputs = [state, summary, *mapping, preview, problems, example_index]
    uploaded = upload.upload(open_upload, inputs=[upload], outputs=[*outputs, drafting], api_visibility="private")
    sampled = sample.click(lambda: open_data(str(SAMPLE_DATA)), outputs=outputs, api_visibility="private")
    preference_sampled = preference_sample.click(lambda: open_data(str(SAMPLE_PREFERENCES)), outputs=outputs,
                                                 api_visibility="private")

    def remap(state: dict | None, *columns: str) -> tuple:
        if not state:
            raise gr.Error("Load a file first.")
        roles = PREFERENCE_ROLES if is_preference(state) else ROLES
        return open_data(state["path"], dict(zip(roles, columns, strict=True)), state["name"],
                         "preference" if is_preference(state) else "")

    drafted = document.use.click(use_pairs, inputs=[document.table, document.source],
                                 outputs=[*outputs, document.note], api_visibility="private")
    remapped = gr.on([d.input for d in mapping], remap, inputs=[state, *mapping], outputs=outputs,
                     trigger_mode="always_last", api_visibility="private")
    saved = gr.BrowserState(None, storage_key="studio-data")
    events = [uploaded, sampled, preference_sampled, remapped, drafted]
    for event in events:
        event.then(remembered, inputs=[state], outputs=[saved], api_visibility="private")
    return DataTab(state, example_index, length_plot, rendered, length_note, events, saved, outputs)
