"""Runs & export tab: every run in one table, their loss curves overlaid, and downloads of the results.

Exports are written to the temp folder (`studio.ui.downloads_dir`) and handed to the browser as a file,
so no folder needs to be served.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import loop, runs, service, sweep
from studio.ui import MODEL_EVENTS, md_escape, streamed
from studio.ui.model_tab import load_recipe

COLUMNS = {"run_id": "run", "state": "state", "data": "data", "your_rows": "your rows",
           "added": "added by Studio", "method": "method", "r": "r", "epochs": "epochs", "learning_rate": "LR",
           "final_loss": "loss", "eval_loss": "held-out loss", "seconds": "seconds", "created": "created"}


# ---- plain functions -------------------------------------------------------------------------------------------


def runs_frame() -> pd.DataFrame:
    rows = runs.list_runs()
    frame = pd.DataFrame(rows, columns=list(COLUMNS)).rename(columns=COLUMNS)
    return frame.astype(object).where(frame.notna(), "").astype(str)


def overlay_figure(run_ids: list[str] | None):
    import plotly.graph_objects as go

    fig = go.Figure()
    for run_id in run_ids or []:
        try:
            metrics = runs.read_metrics(service.run_dir(run_id))
        except service.UserError:
            continue
        train = [m for m in metrics if m.get("loss") is not None]
        evals = [m for m in metrics if m.get("eval_loss") is not None]
        fig.add_trace(go.Scatter(x=[m["step"] for m in train], y=[m["loss"] for m in train], mode="lines",
                                 name=f"{run_id} train"))
        if evals:
            fig.add_trace(go.Scatter(x=[m["step"] for m in evals], y=[m["eval_loss"] for m in evals],
                                     mode="lines+markers", line={"dash": "dot"}, name=f"{run_id} held-out"))
    fig.update_layout(title="Loss by step", xaxis_title="step", yaxis_title="loss", height=380,
                      margin={"l": 40, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return fig


QUESTION_COLUMNS = {"change": "change", "question": "question", "reference": "reference", "before": "before",
                    "after": "after"}
HOW_COLUMNS = ["run", "held-out questions answered", "judged correct", "loss", "held-out loss", "seconds",
               "forgetting check"]


def comparison(run_ids: list[str] | None) -> tuple:
    """(loss curves, the best run in words, settings that differ, how each did, question by question)."""
    fig, run_ids = overlay_figure(run_ids), list(run_ids or [])
    questions = pd.DataFrame(columns=list(QUESTION_COLUMNS.values()))
    if len(run_ids) < 2:
        return (fig, "Pick two or more runs to see the settings that differ and the questions that changed.",
                pd.DataFrame(columns=["setting"]), pd.DataFrame(columns=HOW_COLUMNS), questions)
    result = loop.compare_runs(run_ids)  # a plain error where a run is gone
    differ = pd.DataFrame([[d["setting"], *[str(v) for v in d["values"]]] for d in result["diff"]],
                          columns=["setting", *result["runs"]])
    how = pd.DataFrame([[s["run_id"], f"{s['answered']} of {s['questions']}" if s["answered"] is not None
                         else "not evaluated",
                         f"{s['judged_correct']} of {s['judged']}" if s.get("judged") else "not judged",
                         str(s["final_loss"] or ""), str(s["eval_loss"] or ""), str(s["seconds"]),
                         {True: "flagged", False: "ok", None: "not run"}[s["forgetting_flag"]]]
                        for s in result["summary"]], columns=HOW_COLUMNS)
    winner = result["best"]
    note = (f"Most held-out questions answered: **{md_escape(winner)}**." if winner
            else "None of these runs has been evaluated on held-out questions yet.")
    if not result["diff"]:
        note += " The recipes are the same."
    rows = [r for changes in result["questions"].values() for r in changes]
    if rows:
        questions = pd.DataFrame(rows, columns=list(QUESTION_COLUMNS)).rename(columns=QUESTION_COLUMNS)
    return fig, note, differ, how, questions


def refresh() -> tuple:
    ids = [r["run_id"] for r in runs.list_runs()]
    with_weights = service.runs_with_weights()
    return (runs_frame(), gr.Dropdown(choices=ids), gr.Dropdown(choices=with_weights,
            value=with_weights[0] if with_weights else None),
            gr.Dropdown(choices=[(sweep.describe(s), s["id"]) for s in loop.sweeps()]))


def show_sweep(sweep_id: str | None) -> tuple:
    """(the comparison's run picker set to the sweep's runs, a note on how far it is and which run is best)."""
    if not sweep_id:
        return gr.skip(), ""
    info = loop.sweep_progress(sweep_id)
    note = md_escape(sweep.describe(info))
    if not info["done"]:
        note += ". The rest are waiting or training: press ↻ Refresh later."
    elif info["best"]:
        note += ". Press **Use the best run's settings** to train with them."
    return gr.Dropdown(value=info["runs"]), note


def use_best(sweep_id: str | None) -> tuple:
    """The Model & method form filled with the recipe of the sweep's best run so far, and a note on both tabs."""
    info = loop.sweep_progress(sweep_id or "")
    if not info["best"]:
        raise gr.Error("No run of this sweep has answered its held-out questions yet. Wait for it, then try again.")
    *values, note = load_recipe(str(service.run_dir(info["best"]) / "recipe.yaml"))
    if note.startswith("✅"):
        note = (f"✅ The Model & method form now has the settings of **{md_escape(info['best'])}**, the best run of "
                "the sweep. Press Start training to train with them.")
    return (*values, note, note)  # said on the form and here


EXPORT_STEPS = {"adapter": 1, "recipe": 0, "merged": 3, "gguf": 5}  # as service.export names them


def export(run_id: str | None, fmt: str) -> Iterator[tuple]:
    """(file, note): a merge or a GGUF takes up to a minute, so the note names each step as it begins, "step 2 of
    5", with the time so far; the file comes at the end with how long it took."""
    total, steps = EXPORT_STEPS[fmt.split("-")[0]], []

    def show(name: str, seconds: float) -> tuple:
        steps.append(name)
        return gr.skip(), f"⏳ Step {len(steps)} of {max(total, len(steps))}: {name} ({runs.duration(seconds)} so far)."

    started = time.monotonic()
    yield gr.skip(), "⏳ Starting the export..."
    path = yield from streamed(lambda step: service.export(run_id or "", fmt, step=step), show)  # plain errors
    yield path, f"✅ Ready in {runs.duration(time.monotonic() - started)}: {md_escape(Path(path).name)}."


def push(run_id: str | None, repo_id: str, token: str, what: str) -> tuple[str, str]:
    """Push, then clear the token box: the token is never echoed back or kept."""
    try:
        url = service.push(run_id or "", repo_id, token, what)
    except service.UserError as exc:
        raise gr.Error(str(exc)) from None
    return f"Pushed to {url}", ""


def exporter(fmt: str):
    """The click handler for one format (gradio streams only what is itself a generator function)."""

    def run(run_id: str | None) -> Iterator[tuple]:
        yield from export(run_id, fmt)

    return run


# ---- layout ----------------------------------------------------------------------------------------------------


@dataclass
class RunsTab:
    table: gr.Dataframe
    sweep: gr.Dropdown
    use_best: gr.Button  # app.py wires it to the Model & method form
    sweep_note: gr.Markdown


def build(tab: gr.Tab) -> RunsTab:
    gr.Markdown("### 6. Runs & export")
    refresh_btn = gr.Button("↻ Refresh")
    table = gr.Dataframe(label="All runs", datatype="str", interactive=False, max_height=320,
                         column_widths=["22%"] + ["7%"] * 11)
    with gr.Row():
        sweep_pick = gr.Dropdown(label="Sweeps (several settings tried)", choices=[], scale=3)
        use_btn = gr.Button("Use the best run's settings", scale=1)
    sweep_note = gr.Markdown()
    compare = gr.Dropdown(label="Compare runs", multiselect=True, choices=[],
                          info="Loss curves of every run picked; with two or more, the settings that differ and, "
                               "from the first run picked to the others, the held-out questions that changed.")
    plot = gr.Plot(label="Loss curves")
    best_note = gr.Markdown()
    with gr.Row():
        differ = gr.Dataframe(label="Settings that differ", datatype="str", interactive=False, max_height=260)
        how = gr.Dataframe(label="How each did", datatype="str", interactive=False, max_height=260)
    changed = gr.Dataframe(label="Question by question, from the first run picked", datatype="str",
                           interactive=False, max_height=320, wrap=True)
    with gr.Row():
        pick = gr.Dropdown(label="Export run", choices=[], scale=3)
        adapter_btn = gr.Button("Adapter (.zip)", scale=1)
        merged_btn = gr.Button("Merged model (.zip)", scale=1)
        recipe_btn = gr.Button("Recipe (.yaml)", scale=1)
    with gr.Row():
        gguf_f16 = gr.Button("GGUF f16 + Modelfile (.zip)", scale=1)
        gguf_q8 = gr.Button("GGUF q8_0 + Modelfile (.zip)", scale=1)
    gr.Markdown("<small>The adapter is small and needs the base model; the merged model stands alone "
                "(it takes a moment to build). GGUF files run in llama.cpp and Ollama (llama-family models); "
                "each is checked by loading it back and comparing its logits with the merged model.</small>")
    export_note = gr.Markdown()
    download = gr.File(label="Download", interactive=False, height=90)
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        with gr.Row():
            repo_id = gr.Textbox(label="Repository (owner/name)", placeholder="my-team/ferry-assistant", scale=2)
            token = gr.Textbox(label="Access token (write)", type="password", scale=2)
            what = gr.Radio(["adapter", "merged"], value="adapter", label="What", scale=1)
        push_btn = gr.Button("Push (private repository)")
        push_result = gr.Markdown()

    outputs = [table, compare, pick, sweep_pick]
    sweep_pick.change(show_sweep, inputs=[sweep_pick], outputs=[compare, sweep_note], api_visibility="private")
    refresh_btn.click(refresh, outputs=outputs, api_visibility="private")
    tab.select(refresh, outputs=outputs, api_visibility="private")
    compare.change(comparison, inputs=[compare], outputs=[plot, best_note, differ, how, changed],
                   api_visibility="private")
    for button, fmt in ((adapter_btn, "adapter"), (recipe_btn, "recipe"), (merged_btn, "merged"),
                        (gguf_f16, "gguf-f16"), (gguf_q8, "gguf-q8_0")):
        button.click(exporter(fmt), inputs=[pick], outputs=[download, export_note], api_visibility="private",
                     **(MODEL_EVENTS if fmt not in ("adapter", "recipe") else {}))
    push_btn.click(push, inputs=[pick, repo_id, token, what], outputs=[push_result, token], api_visibility="private")
    return RunsTab(table, sweep_pick, use_btn, sweep_note)
