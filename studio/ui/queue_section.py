"""Train tab, "Queue" and "Try several settings": the runs waiting their turn, and a sweep of one setting.

Start while a run trains queues the new run (studio.run_queue); this section shows the line, moves a run up and
cancels one. A sweep queues one run per value of one setting, says how long the whole sweep will take before it
starts, and the Runs tab's comparison names the best. Every button is a thin call into `studio.service`, which the
CLI (`python -m studio queue`, `python -m studio sweep`) and the scripting API call too.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from studio import loop, runs, service
from studio.sweep import SETTINGS
from studio.ui import info, md_escape
from studio.ui.model_tab import recipe_from_values

QUEUE_COLUMNS = {"position": "#", "run_id": "run", "data": "data", "r": "r", "epochs": "epochs",
                 "learning_rate": "LR", "sweep": "sweep"}


# ---- plain functions -------------------------------------------------------------------------------------------


def queue_view(picked: str | None = None) -> tuple:
    """(the waiting runs as a table, the run picker): the picker keeps its run while it still waits."""
    rows = loop.queue()
    frame = pd.DataFrame(rows, columns=list(QUEUE_COLUMNS)).rename(columns=QUEUE_COLUMNS)
    frame = frame.astype(object).where(frame.notna(), "").astype(str)
    ids = [r["run_id"] for r in rows]
    return frame, gr.Dropdown(choices=ids, value=picked if picked in ids else (ids[0] if ids else None))


def move_up(run_id: str | None) -> tuple:
    position = next((r["position"] for r in loop.queue() if r["run_id"] == run_id), None)
    if position is None:
        raise gr.Error("Pick a run that is waiting in the queue.")
    loop.queue_move(run_id, max(position - 1, 1))
    return queue_view(run_id)


def cancel(run_id: str | None) -> tuple:
    if not run_id:
        raise gr.Error("Pick a run that is waiting in the queue.")
    loop.queue_cancel(run_id)
    info(f"Run {run_id} was taken out of the queue.")
    return queue_view()


def plan_note(data_state: dict | None, setting: str, values: str, *form) -> str:
    """The runs a sweep would train and how long they would take here, before anything starts."""
    recipe, problems = recipe_from_values(form, data_state)
    if problems:
        return "Fix the recipe first (Model & method tab): " + md_escape("; ".join(problems))
    if not data_state or not data_state.get("path"):
        return "Load data on the Data tab to see the runs and the time they take."
    try:
        return "ℹ️ " + md_escape(loop.plan_sweep(recipe, data_state["path"], setting, values)["text"])
    except service.UserError as exc:
        return "❌ " + md_escape(exc)


def start_sweep(data_state: dict | None, setting: str, values: str, *form) -> tuple:
    recipe, problems = recipe_from_values(form, data_state)
    if problems:
        raise gr.Error("Fix the recipe first (Model & method tab):\n" + "\n".join(problems))
    started = loop.start_sweep(recipe, data_state["path"] if data_state else None, setting, values)
    info(f"Queued {len(started['runs'])} runs ({started['id']}).")
    note = (f"✅ Queued {len(started['runs'])} runs as **{md_escape(started['id'])}**. {md_escape(started['text'])} "
            "When they have answered their held-out questions, the Runs & export tab compares them and names the best.")
    return note, *queue_view(), gr.Dropdown(choices=[r["run_id"] for r in runs.list_runs()], value=started["runs"][0])


# ---- layout ----------------------------------------------------------------------------------------------------


@dataclass
class QueueSection:
    table: gr.Dataframe
    picked: gr.Dropdown


def build(data_state: gr.State, recipe_inputs: list, run: gr.Dropdown) -> QueueSection:
    """The two accordions; `run` is the Train tab's "Run shown", set to a sweep's first run when it starts."""
    with gr.Accordion("Queue: runs waiting their turn", open=False):
        gr.Markdown("<small>Press **Start training** while a run trains and the new run waits here; they train "
                    "one after another, also after a restart of the studio.</small>")
        table = gr.Dataframe(label="Waiting to train", datatype="str", interactive=False, max_height=220)
        with gr.Row():
            picked = gr.Dropdown(label="Waiting run", choices=[], scale=3)
            up_btn = gr.Button("Move up", scale=1)
            cancel_btn = gr.Button("Take out of the queue", variant="stop", scale=1)
    with gr.Accordion("Try several settings", open=False):
        gr.Markdown("<small>One run per value of one setting, with everything else as on the Model & method tab; "
                    "each answers its held-out questions, and the Runs & export tab names the best.</small>")
        with gr.Row():
            setting = gr.Dropdown(label="Setting to try", choices=[(label, key) for key, label in SETTINGS.items()],
                                  value="training.learning_rate", scale=1)
            values = gr.Textbox(label="Values (2 to 4)", scale=2, placeholder="e.g. 1e-3, 3e-3, 6e-3",
                                info="Leave empty and Studio picks half, the sized value, and double.")
        note = gr.Markdown()
        with gr.Row():
            plan_btn = gr.Button("Show the runs and the time", scale=1)
            sweep_btn = gr.Button("Start these runs", variant="primary", interactive=not service.demo_mode(), scale=1)

    form = [data_state, setting, values, *recipe_inputs]
    plan_btn.click(plan_note, inputs=form, outputs=[note], api_visibility="private")
    setting.change(plan_note, inputs=form, outputs=[note], api_visibility="private", show_progress="hidden")
    values.submit(plan_note, inputs=form, outputs=[note], api_visibility="private")
    sweep_btn.click(start_sweep, inputs=form, outputs=[note, table, picked, run], api_visibility="private")
    up_btn.click(move_up, inputs=[picked], outputs=[table, picked], api_visibility="private")
    cancel_btn.click(cancel, inputs=[picked], outputs=[table, picked], api_visibility="private")
    timer = gr.Timer(2.0)
    timer.tick(queue_view, inputs=[picked], outputs=[table, picked], show_progress="hidden", api_visibility="private")
    return QueueSection(table, picked)
