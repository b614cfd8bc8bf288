"""The scripting API end to end: a real app on a free port, driven by gradio_client like a user's script.

One short run (3 steps of LoRA on the default model) covers train -> status -> compare -> runs, a second one queues
behind it, a sweep of two learning rates runs from a script; the refusals (a broken recipe, an unknown run) are
checked on the way.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample_qa.csv"
QUICK_RECIPE = """
model: {base: default}
data: {max_length: 64, eval_size: 0}
method: {name: lora, r: 4, alpha: 8}
training: {epochs: 1, max_steps: 3, batch_size: 4, learning_rate: 0.001, save_steps: 50}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    saved = os.environ.get("STUDIO_RUNS")
    os.environ["STUDIO_RUNS"] = str(tmp_path_factory.mktemp("runs"))
    from studio.jobs import jobs
    from studio.ui.app import build_app, launch_kwargs, prepare, use_queue

    prepare()
    demo = build_app()
    use_queue(demo)
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()
        jobs.wait(120)
        if saved is None:
            os.environ.pop("STUDIO_RUNS", None)
        else:
            os.environ["STUDIO_RUNS"] = saved


def test_broken_yaml_is_refused_with_the_line(client):
    with pytest.raises(Exception, match="not valid YAML at line"):
        client.predict(handle_file(str(SAMPLE)), "training: [epochs: 3", api_name="/api_train")


def test_unknown_setting_is_named(client):
    with pytest.raises(Exception, match="training.epocs: unknown setting. Did you mean 'epochs'"):
        client.predict(handle_file(str(SAMPLE)), "training: {epocs: 3}", api_name="/api_train")


def test_unknown_run_is_a_plain_error(client):
    with pytest.raises(Exception, match="No run named"):
        client.predict("../../etc", api_name="/api_status")


def test_train_poll_compare_and_list(client):
    run_id = client.predict(handle_file(str(SAMPLE)), QUICK_RECIPE, api_name="/api_train")
    assert run_id.endswith("sample-qa")

    queued = client.predict(handle_file(str(SAMPLE)), QUICK_RECIPE, api_name="/api_train")  # waits its turn
    assert [r["run_id"] for r in client.predict(api_name="/api_queue")] == [queued]
    assert client.predict(queued, api_name="/api_status")["state"] == "queued"
    assert client.predict(queued, api_name="/api_queue_cancel") == []
    with pytest.raises(Exception, match="No run named"):
        client.predict(queued, api_name="/api_queue_cancel")

    deadline = time.time() + 180
    status = {}
    while time.time() < deadline:
        status = client.predict(run_id, api_name="/api_status")
        if status["state"] not in ("queued", "running", "stopping"):
            break
        time.sleep(1)
    assert status["state"] == "done", status
    assert status["step"] == 3 and status["loss"] > 0

    replies = client.predict(run_id, "Who founded the Brindlewick Ferry Company?", 24, api_name="/api_compare")
    assert set(replies) == {"base", "tuned"}
    assert replies["base"].strip() and replies["tuned"].strip()

    listed = {row["run_id"]: row for row in client.predict(api_name="/api_runs")}
    assert listed[run_id]["state"] == "done"
    assert listed[run_id]["method"] == "lora"


def test_the_queue_does_not_wake_a_thousand_times_a_second():
    """Gradio's idle queue loop sleeps 1 ms by default; next to a 2-core training job that cost a third
    of its speed (studio.ui.app.use_queue). If gradio renames the setting, this says so."""
    import gradio as gr

    from studio.ui.app import use_queue

    with gr.Blocks() as demo:
        gr.Markdown("x")
    use_queue(demo)
    assert demo._queue.sleep_when_free >= 0.02
    assert demo._queue.progress_update_sleep_when_free >= 0.1


def test_a_sweep_from_a_script_queues_its_runs_and_reports_them(client):
    """Two 3-step runs with no held-out questions (the sweep's evaluation and best: tests/test_sweep.py)."""
    recipe = QUICK_RECIPE.replace("eval_size: 0", "eval_size: 0, question_forms: 0, paraphrases: 0, replay: 0")
    started = client.predict(handle_file(str(SAMPLE)), recipe, "training.learning_rate", "0.001, 0.002",
                             api_name="/api_sweep")
    assert started["values"] == [0.001, 0.002] and len(started["runs"]) == 2 and "about" in started["text"]
    deadline = time.time() + 300
    info = {}
    while time.time() < deadline:
        info = client.predict(started["id"], api_name="/api_sweep_status")
        if info["done"]:
            break
        time.sleep(1)
    assert info["done"] and info["finished"] == 2, info
    assert set(info["states"].values()) == {"done"}
    with pytest.raises(Exception, match="Give 2 to 4 values"):
        client.predict(handle_file(str(SAMPLE)), QUICK_RECIPE, "training.learning_rate", "0.001",
                       api_name="/api_sweep")
