"""Train tab: start, stop and resume a run, watch it through its folder, and (queue_section) the runs waiting.

The run trains in `studio.jobs`' background thread, never in a browser request; a 1 s `gr.Timer`
reads `status.json`, `metrics.jsonl` and `train.log` from the watched run's folder. So closing the
tab loses nothing, and a reloaded page reattaches to whatever is training (see `app.py`'s load).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

import gradio as gr

from studio import loop, runs, service
from studio.jobs import jobs
from studio.ui import info, md_escape, queue_section, warn
from studio.ui.model_tab import recipe_from_values

STATE_ICON = {"queued": "⏳", "running": "🏃", "stopping": "⏸️", "stopped": "⏹️", "failed": "❌", "done": "✅",
              "interrupted": "⚠️"}


# ---- plain functions -------------------------------------------------------------------------------------------


def loss_figure(metrics: list[dict], title: str = ""):
    import plotly.graph_objects as go

    fig = go.Figure()
    train = [m for m in metrics if m.get("loss") is not None]
    evals = [m for m in metrics if m.get("eval_loss") is not None]
    # Markers while there are few points: a single point drawn as a line is invisible.
    fig.add_trace(go.Scatter(x=[m["step"] for m in train], y=[m["loss"] for m in train],
                             mode="lines+markers" if len(train) < 50 else "lines", name="train loss"))
    if evals:
        fig.add_trace(go.Scatter(x=[m["step"] for m in evals], y=[m["eval_loss"] for m in evals],
                                 mode="lines+markers", name="held-out loss"))
    # DPO/ORPO runs: the rewards on a second axis. A growing margin means the chosen answer is preferred more.
    rewards = [m for m in metrics if m.get("reward_margin") is not None]
    for key, name, dash in (("reward_margin", "reward margin", "solid"), ("rewards_chosen", "chosen reward", "dot"),
                            ("rewards_rejected", "rejected reward", "dot")):
        points = [m for m in rewards if m.get(key) is not None]
        if points:
            fig.add_trace(go.Scatter(x=[m["step"] for m in points], y=[m[key] for m in points], name=name, yaxis="y2",
                                     mode="lines+markers" if len(points) < 50 else "lines", line={"dash": dash}))
    if rewards:
        fig.update_layout(yaxis2={"title": "reward (higher margin is better)", "overlaying": "y", "side": "right",
                                  "showgrid": False, "zeroline": True})
    fig.update_layout(title=title or ("Loss and reward margin" if rewards else "Loss (lower is better)"),
                      xaxis_title="step", yaxis_title="loss", height=340,
                      margin={"l": 40, "r": 60 if rewards else 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def progress_html(status: dict, metrics: list[dict], now: float | None = None) -> str:
    """A progress bar with what the run is doing, step, epoch, speed, time left and wall time since Start; every
    value is a number, one of ours, or escaped."""
    step, total = status.get("step") or 0, status.get("total") or 0
    pct = 100 * step / total if total else 0
    last = metrics[-1] if metrics else {}
    active = status.get("state") in runs.ACTIVE
    facts = [runs.PHASES.get(status.get("phase", ""), "preparing").capitalize()] if active else []
    facts += [f"step {step}/{total}"] if total else []
    if status.get("epoch") is not None:
        facts.append(f"epoch {status['epoch']:.2f}")
    if last.get("tokens_per_s"):
        facts.append(f"{last['tokens_per_s']:.0f} tokens/s")
    if status.get("state") in runs.ACTIVE and status.get("eta"):
        facts.append(f"about {status['eta']:.0f} s left")
    if status.get("loss") is not None:
        facts.append(f"loss {status['loss']:.4f}")
    if active and status.get("phases"):  # from the latest Start or Resume
        began = next(t for name, t in reversed(status["phases"]) if name == "waiting" or t == status["phases"][0][1])
        facts.append(f"{runs.duration((now or time.time()) - began)} since Start")
    colour = {"failed": "#dc2626", "done": "#16a34a"}.get(status.get("state", ""), "#2563eb")
    return (f'<div style="border:1px solid #d1d5db;border-radius:6px;height:18px;overflow:hidden">'
            f'<div style="width:{pct:.1f}%;height:100%;background:{colour}"></div></div>'
            f'<div style="margin-top:4px;font-size:0.9em">{html.escape(" · ".join(facts))}</div>')


def status_markdown(run_id: str, status: dict) -> str:
    state = status.get("state", "unknown")
    message = md_escape(status.get("message", ""))
    # Before its first step a run is busy, not idle: it says with what ("drafting extra examples"), not "queued".
    shown = runs.PHASES.get(status.get("phase", ""), state) if state == "queued" else state
    text = f"{STATE_ICON.get(state, '')} **{md_escape(run_id)}**: {md_escape(shown)}. {message}"
    for warning in status.get("warnings") or []:
        text += f"\n\n⚠ **Warning:** {md_escape(warning)}"
    return text


def run_choices() -> list[str]:
    return [r["run_id"] for r in runs.list_runs()]


def button_states(status: dict, training: bool, resumable: bool, demo: bool) -> tuple[bool, bool, bool]:
    """(Start, Stop, Resume) enabled: Start always (while a run trains it queues the new one), Stop while the shown
    run is active or waits in the queue, Resume for a shown run that stopped with a checkpoint while nothing else
    trains; a read-only demo starts nothing."""
    active = status.get("state") in runs.ACTIVE and status.get("state") != "stopping"
    return (not demo, active, resumable and not active and not training and not demo)


def start_label(training: bool) -> str:
    return "Add to the queue" if training else "Start training"


def _buttons(folder, status: dict) -> tuple:
    training = jobs.active() is not None
    resumable = folder is not None and runs.resume_problem(folder) is None
    start, stop, resume = button_states(status, training, resumable, service.demo_mode())
    return (gr.Button(interactive=start, value=start_label(training)), gr.Button(interactive=stop),
            gr.Button(interactive=resume))


def poll(run_id: str | None, seen: str) -> tuple:
    """(status, progress, plot, log, signature, Start, Stop, Resume) for the watched run; the plot is skipped when
    nothing changed, and each button is enabled only when it applies."""
    if not run_id:
        return "No run yet. Press **Start training**.", "", gr.skip(), "", seen, *_buttons(None, {})
    try:
        folder = service.run_dir(run_id)
    except service.UserError as exc:
        return md_escape(exc), "", gr.skip(), "", seen, *_buttons(None, {})
    status, metrics = runs.read_status(folder), runs.read_metrics(folder)
    signature = f"{run_id}:{len(metrics)}"
    title = f"{'Loss and reward margin' if any('reward_margin' in m for m in metrics) else 'Loss'}: {run_id}"
    plot = loss_figure(metrics, title) if signature != seen else gr.skip()
    return (status_markdown(run_id, status), progress_html(status, metrics), plot, service.log_tail(run_id), signature,
            *_buttons(folder, status))


def start(data_state: dict | None, *values) -> tuple:
    recipe, problems = recipe_from_values(values, data_state)
    if problems:
        raise gr.Error("Fix the recipe first (Model & method tab):\n" + "\n".join(problems))
    try:
        run_id = service.start(recipe, data_state["path"] if data_state else None)
    except service.UserError as exc:
        raise gr.Error(str(exc)) from None
    waiting = [r["run_id"] for r in loop.queue()]
    info(f"Run {run_id} waits in the queue ({waiting.index(run_id) + 1} of {len(waiting)})." if run_id in waiting
         else f"Started run {run_id}.")
    return gr.Dropdown(choices=run_choices(), value=run_id), ""


def draft_ahead(data_state: dict | None, *values) -> None:
    """After the data loads: its run's extra examples start drafting now, so Start trains within seconds."""
    if not data_state or not data_state.get("examples"):
        return
    recipe, problems = recipe_from_values(values, data_state)
    service.draft_ahead(None if problems else recipe, data_state.get("path"))


def stop(run_id: str | None) -> None:
    try:
        service.stop(run_id or "")
    except service.UserError as exc:
        warn(str(exc))
        return
    info("Stopping after the current step; a checkpoint is saved so you can resume.")


def resume(run_id: str | None) -> tuple:
    try:
        service.resume(run_id or "")
    except service.UserError as exc:
        raise gr.Error(str(exc)) from None
    return gr.Dropdown(choices=run_choices(), value=run_id), ""


def reattach() -> gr.Dropdown:
    """On page load: the run training now (or the newest), so a reload finds the run it left."""
    return gr.Dropdown(choices=run_choices(), value=service.watch_default())


# ---- layout ----------------------------------------------------------------------------------------------------


@dataclass
class TrainTab:
    run: gr.Dropdown


def build(data_state: gr.State, recipe_inputs: list, demo: gr.Blocks) -> TrainTab:
    gr.Markdown("### 3. Train\nTraining runs in the background: you can close this page and come back.")
    if service.demo_mode():
        gr.Markdown("🔒 **Read-only demo:** starting and resuming runs is turned off here.")
    with gr.Row():
        start_btn = gr.Button("Start training", variant="primary", interactive=not service.demo_mode())
        stop_btn = gr.Button("Stop", variant="stop", interactive=False)
        resume_btn = gr.Button("Resume", interactive=False)
    with gr.Row():
        run = gr.Dropdown(label="Run shown", choices=[], value=None, allow_custom_value=False, scale=4)
        refresh = gr.Button("↻ Refresh list", scale=1)
    queue_section.build(data_state, recipe_inputs, run)
    status = gr.Markdown()
    progress = gr.HTML()
    plot = gr.Plot(label="Loss")
    with gr.Accordion("Log (details)", open=False):  # the trainer's own lines: for whoever wants them
        log = gr.Textbox(label="Log", lines=10, max_lines=10, interactive=False, autoscroll=True, show_label=False)
    seen = gr.State("")
    timer = gr.Timer(1.0)

    outputs = [status, progress, plot, log, seen, start_btn, stop_btn, resume_btn]
    timer.tick(poll, inputs=[run, seen], outputs=outputs, show_progress="hidden", api_visibility="private")
    run.change(poll, inputs=[run, gr.State("")], outputs=outputs, show_progress="hidden", api_visibility="private")
    start_btn.click(start, inputs=[data_state, *recipe_inputs], outputs=[run, seen], api_visibility="private")
    stop_btn.click(stop, inputs=[run], api_visibility="private")
    resume_btn.click(resume, inputs=[run], outputs=[run, seen], api_visibility="private")
    refresh.click(reattach, outputs=[run], api_visibility="private")
    demo.load(reattach, outputs=[run], api_visibility="private")
    return TrainTab(run)
