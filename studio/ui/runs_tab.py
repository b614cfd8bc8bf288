"""Runs & export tab: every run in one table, their loss curves overlaid, and downloads of the results.

Exports are written to the temp folder (`studio.ui.downloads_dir`) and handed to the browser as a file,
so no folder needs to be served.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from studio import runs, service
from studio.ui import MODEL_EVENTS

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


def refresh() -> tuple:
    ids = [r["run_id"] for r in runs.list_runs()]
    with_weights = service.runs_with_weights()
    return (runs_frame(), gr.Dropdown(choices=ids), gr.Dropdown(choices=with_weights,
            value=with_weights[0] if with_weights else None))


def export(run_id: str | None, fmt: str) -> str:
    try:
        return service.export(run_id or "", fmt)
    except service.UserError as exc:
        raise gr.Error(str(exc)) from None


def push(run_id: str | None, repo_id: str, token: str, what: str) -> tuple[str, str]:
    """Push, then clear the token box: the token is never echoed back or kept."""
    try:
        url = service.push(run_id or "", repo_id, token, what)
    except service.UserError as exc:
        raise gr.Error(str(exc)) from None
    return f"Pushed to {url}", ""


# ---- layout ----------------------------------------------------------------------------------------------------


@dataclass
class RunsTab:
    table: gr.Dataframe


def build(tab: gr.Tab) -> RunsTab:
    gr.Markdown("### 6. Runs & export")
    refresh_btn = gr.Button("↻ Refresh")
    table = gr.Dataframe(label="All runs", datatype="str", interactive=False, max_height=320,
                         column_widths=["22%"] + ["7%"] * 11)
    compare = gr.Dropdown(label="Compare loss curves of", multiselect=True, choices=[])
    plot = gr.Plot(label="Loss curves")
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
    download = gr.File(label="Download", interactive=False, height=90)
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        with gr.Row():
            repo_id = gr.Textbox(label="Repository (owner/name)", placeholder="my-team/ferry-assistant", scale=2)
            token = gr.Textbox(label="Access token (write)", type="password", scale=2)
            what = gr.Radio(["adapter", "merged"], value="adapter", label="What", scale=1)
        push_btn = gr.Button("Push (private repository)")
        push_result = gr.Markdown()

    outputs = [table, compare, pick]
    refresh_btn.click(refresh, outputs=outputs, api_visibility="private")
    tab.select(refresh, outputs=outputs, api_visibility="private")
    compare.change(overlay_figure, inputs=[compare], outputs=[plot], api_visibility="private")
    adapter_btn.click(lambda r: export(r, "adapter"), inputs=[pick], outputs=[download], api_visibility="private")
    merged_btn.click(lambda r: export(r, "merged"), inputs=[pick], outputs=[download], **MODEL_EVENTS,
                     api_visibility="private")
    recipe_btn.click(lambda r: export(r, "recipe"), inputs=[pick], outputs=[download], api_visibility="private")
    gguf_f16.click(lambda r: export(r, "gguf-f16"), inputs=[pick], outputs=[download], **MODEL_EVENTS,
                   api_visibility="private")
    gguf_q8.click(lambda r: export(r, "gguf-q8_0"), inputs=[pick], outputs=[download], **MODEL_EVENTS,
                  api_visibility="private")
    push_btn.click(push, inputs=[pick, repo_id, token, what], outputs=[push_result, token], api_visibility="private")
    return RunsTab(table)
