"""The Studio web app: six tabs in the order of the walk, the shared state, the scripting API, launch settings.

Scripting API (stable; call it with `gradio_client`):

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    run_id = client.predict(handle_file("qa.csv"), "", api_name="/api_train")
    client.predict(run_id, api_name="/api_status")   # {"state", "step", "total", "loss", "eta", "message", ...}
    client.predict(run_id, api_name="/api_stop")     # asks the run to stop with a checkpoint; returns its status
    client.predict(run_id, "When was the company founded?", api_name="/api_compare")  # {"base": ..., "tuned": ...}
    client.predict(api_name="/api_runs")             # one dict per run, newest first
    client.predict([run_a, run_b], api_name="/api_compare_runs")  # settings that differ, figures, changed questions
    client.predict(run_id, question, answer, False, "the right answer", api_name="/api_correct")
    client.predict(run_id, False, api_name="/api_train_again")  # from scratch (True: continue the adapter)

- `/api_train(data_file, recipe_yaml)` -> run id. `recipe_yaml` is the text of a recipe; empty means
  `recipes/smollm2_135m_lora_cpu.yaml` sized to the data (as `python -m studio train --data FILE`).
  Refused while another run trains, in read-only demo mode, or when the recipe or the data has problems.
- `/api_status(run_id)` -> dict with state (queued, running, stopping, stopped, failed, done,
  interrupted), message, step, total, epoch, loss, eval_loss, eta (seconds), train_seconds.
- `/api_stop(run_id)` -> the status dict after asking the run to stop.
- `/api_compare(run_id, prompt, max_new_tokens=96)` -> {"base": str, "tuned": str}, greedy replies (within the
  studio's caps: STUDIO_MAX_NEW_TOKENS, STUDIO_MAX_PROMPT_CHARS; it waits at most STUDIO_MAX_WAIT_S for the model).
- `/api_prepare(data_file, recipe_yaml)` -> what it did: begins drafting the run's extra examples for that data
  and recipe now (as loading a file on the Data tab does), so an `/api_train` with the same ones trains at once.
- `/api_runs()` -> list of dicts (run_id, state, data, examples (trained on), your_rows (the user's own rows
  among them), added (rewrites, question forms, general answers Studio added), base, method, r, epochs,
  learning_rate, final_loss, eval_loss, seconds, created, message).
Every refusal is an error whose message says what to do, e.g. "A run is already training (...)". The endpoints
and the page's own events run through `studio.ui.guard` and the checks of `studio.policy` alike.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import gradio as gr

from studio import loop, policy, runs, service
from studio.jobs import jobs
from studio.paths import downloads_dir, runs_dir, studio_home
from studio.ui import (
    MODEL_EVENTS,
    chat_tab,
    data_tab,
    eval_tab,
    lang,
    model_tab,
    runs_tab,
    train_tab,
    warm_training_imports,
)
from studio.ui.guard import Shield, guard_events


def _plain_errors(fn):
    """API endpoints raise `gr.Error` with the plain message, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except service.UserError as exc:
            raise gr.Error(str(exc)) from None

    return wrapper


@_plain_errors
def api_status(run_id: str) -> dict:
    """State and progress of a run."""
    return service.status(run_id)


@_plain_errors
def api_stop(run_id: str) -> dict:
    """Ask a run to stop at its next step, with a checkpoint; returns its status."""
    return service.stop(run_id)


@_plain_errors
def api_compare(run_id: str, prompt: str, max_new_tokens: int = 96) -> dict:
    """Replies of the base and the tuned model to one prompt: {"base": ..., "tuned": ...}."""
    return service.compare(run_id, prompt, max_new_tokens)  # checked there, against the studio's cap


@_plain_errors
def api_compare_runs(run_ids: list[str]) -> dict:
    """Runs side by side: {"runs", "diff", "summary", "curves", "questions"} (see studio.compare)."""
    return loop.compare_runs(list(run_ids or []))


@_plain_errors
def api_correct(run_id: str, question: str, answer: str, right: bool, correction: str = "") -> dict:
    """Mark a tuned answer right, or wrong with the right answer; the next train-again learns it."""
    return loop.mark_answer(run_id, question, answer, right, correction, source="api")


@_plain_errors
def api_train_again(run_id: str, continue_training: bool = False) -> str:
    """A new run on the run's data with every correction in it (a new revision); its id."""
    return loop.train_again(run_id, continue_training)


@_plain_errors
def api_queue() -> list:
    """The runs waiting to train, first to start first."""
    return loop.queue()


@_plain_errors
def api_queue_move(run_id: str, position: int) -> list:
    """Move a waiting run to `position` (1 = next); returns the queue."""
    return loop.queue_move(run_id, position)


@_plain_errors
def api_queue_cancel(run_id: str) -> list:
    """Take a waiting run out of the queue; returns the queue."""
    return loop.queue_cancel(run_id)


@_plain_errors
def api_sweep(data_file: str | None, recipe_yaml: str, setting: str, values: str) -> dict:
    """Queue one run per value of one setting (empty values: Studio picks); {"id", "runs", "values", "text"}."""
    recipe = service.recipe_from_yaml(recipe_yaml or "", data_file)
    return loop.start_sweep(recipe, data_file, setting or "", values or "")


@_plain_errors
def api_sweep_status(sweep_id: str) -> dict:
    """A sweep's runs, how many finished and the best so far (by held-out questions answered)."""
    return loop.sweep_progress(sweep_id)


@_plain_errors
def api_revisions(run_id: str) -> list:
    """The revisions of a run's data made from corrections, oldest first."""
    return loop.revisions_table(run_id)


@_plain_errors
def api_judge(run_id: str, endpoint: str = "", model: str = "") -> dict:
    """The optional judge's grades of a run's held-out answers (key: STUDIO_JUDGE_API_KEY on the server)."""
    return loop.judge(run_id, endpoint or "", model or "")


@_plain_errors
def api_runs() -> list:
    """Every run, newest first."""
    return service.runs_table()


@_plain_errors
def api_prepare(data_file: str | None, recipe_yaml: str) -> str:
    """Begin drafting a run's extra examples for this data now, as loading it on the Data tab does."""
    return service.prepare_api(data_file, recipe_yaml or "")


@_plain_errors
def api_train(data_file: str | None, recipe_yaml: str) -> str:
    """Start training on an uploaded file; returns the run id."""
    return service.train_api(data_file, recipe_yaml or "")


def _wire_api() -> None:
    # Train takes a file, so it is a hidden button with a File input (the client uploads it);
    # the rest take plain values and go through gr.api.
    with gr.Row(visible=False):
        data_file = gr.File(type="filepath")
        recipe_yaml = gr.Textbox()
        run_id = gr.Textbox()
        trigger, prepare = gr.Button(), gr.Button()
        setting, values, sweep_trigger, sweep_out = gr.Textbox(), gr.Textbox(), gr.Button(), gr.JSON()
    trigger.click(api_train, inputs=[data_file, recipe_yaml], outputs=[run_id], api_name="api_train")
    sweep_trigger.click(api_sweep, inputs=[data_file, recipe_yaml, setting, values], outputs=[sweep_out],
                        api_name="api_sweep")
    prepare.click(api_prepare, inputs=[data_file, recipe_yaml], outputs=[run_id], api_name="api_prepare")
    gr.api(api_status, api_name="api_status", queue=False)
    gr.api(api_stop, api_name="api_stop")
    gr.api(api_compare, api_name="api_compare", **MODEL_EVENTS)
    gr.api(api_runs, api_name="api_runs", queue=False)
    gr.api(api_compare_runs, api_name="api_compare_runs", queue=False)
    gr.api(api_correct, api_name="api_correct", queue=False)
    gr.api(api_train_again, api_name="api_train_again")
    gr.api(api_judge, api_name="api_judge")
    gr.api(api_revisions, api_name="api_revisions", queue=False)
    gr.api(api_queue, api_name="api_queue", queue=False)
    gr.api(api_queue_move, api_name="api_queue_move", queue=False)
    gr.api(api_queue_cancel, api_name="api_queue_cancel", queue=False)
    gr.api(api_sweep_status, api_name="api_sweep_status", queue=False)


DEMO_LANDING = (
    "# Studio: the same small model before and after fine-tuning\n"
    "Below, **SmolLM2-135M** answers questions about the Brindlewick Ferry Company, a made-up business it cannot "
    "know, **before** (left) and **after** (right) 2 epochs of LoRA on 40 question-and-answer pairs, trained on a "
    "2-core CPU in about two minutes. Click a question: the ones it was taught, or the same facts asked in words "
    "it never saw. **To train on your own data**: *Duplicate this Space* (the free CPU trains this 135M model in "
    "minutes; models of 1-3B want a GPU, and QLoRA fits 7-8B on a 24 GB one), or run it on your machine with "
    "`make run` (see the README). This copy is read-only: no training here."
)


def build_app() -> gr.Blocks:
    # Gradio's own copies of uploads and downloads: swept every hour, anything older than a day goes.
    with gr.Blocks(title="Studio: fine-tune a small LLM on your Q&A", delete_cache=(3600, 86400)) as demo:
        landing = policy.demo_mode()
        with gr.Row(equal_height=False):
            gr.Markdown(DEMO_LANDING if landing else
                        "# Studio\nTeach a language model your questions and answers: load data, pick a method, "
                        "train, then compare the model before and after.", scale=6)
            switch = gr.Radio([(name, code) for code, name in lang.LANGS.items()], value="en", show_label=False,
                              container=False, elem_id=lang.SWITCH_ID, scale=1, min_width=180)
        switch.input(None, inputs=[switch], js=lang.SWITCH_JS, api_visibility="private")
        with gr.Tabs(selected="chat" if landing else None):
            with gr.Tab("1. Data"):
                data = data_tab.build()
            with gr.Tab("2. Model & method"):
                model = model_tab.build()
            with gr.Tab("3. Train"):
                train_tab.build(data.state, model.inputs, demo)
            with gr.Tab("4. Chat", id="chat") as chat:
                chat_tab.build(chat, demo, demo_landing=landing)
            with gr.Tab("5. Evaluate") as evaluate:
                eval_tab.build(evaluate)
            with gr.Tab("6. Runs & export") as history:
                history_tab = runs_tab.build(history)
        _wire_api()

        # Cross-tab wiring: the data analysis depends on the model's tokenizer, max_length and system
        # prompt; the form is sized to the data when data arrives; the summary follows both.
        analyse_inputs = [data.state, model.base, model.system_prompt, model.max_length, data.example_index]
        analyse_outputs = [data.length_plot, data.rendered, data.length_note]
        summary_inputs = [data.state, *model.inputs]
        # A reload (or a restart) finds the data this browser had loaded, then the settings it had chosen.
        # The kept settings are read first, before the sizing's own changes to the form are saved over them.
        settings, held = gr.BrowserState(None, storage_key="studio-settings"), gr.State(None)
        restored = demo.load(lambda saved, kept: (*data_tab.restore(saved), kept), inputs=[data.saved, settings],
                             outputs=[*data.outputs, held], api_visibility="private")
        # Sized first: the example view then shows the system prompt the run will train with, not the base model's.
        for event in [*data.loaded, restored]:
            sized = event.then(model_tab.size_to, inputs=summary_inputs, outputs=[*model.inputs, model.sized_note],
                               api_visibility="private")
            if event is restored:
                sized = sized.then(model_tab.restore_settings, inputs=[held], outputs=model.inputs,
                                   api_visibility="private")
            (sized.then(data_tab.analyse, inputs=analyse_inputs, outputs=analyse_outputs, api_visibility="private")
             .then(model_tab.summarize, inputs=summary_inputs, outputs=model.summary_outputs,
                   api_visibility="private")
             .then(train_tab.draft_ahead, inputs=summary_inputs, show_progress="hidden", api_visibility="private"))
        gr.on([c.change for c in model.inputs], lambda *values: list(values), inputs=model.inputs,
              outputs=[settings], trigger_mode="always_last", show_progress="hidden", api_visibility="private")
        gr.on([model.base.input, model.system_prompt.input, model.max_length.input, data.example_index.release],
              data_tab.analyse, inputs=analyse_inputs, outputs=analyse_outputs, trigger_mode="always_last",
              api_visibility="private")
        gr.on([c.input for c in model.inputs], model_tab.summarize, inputs=summary_inputs,
              outputs=model.summary_outputs, trigger_mode="always_last", show_progress="hidden",
              api_visibility="private")
        used = history_tab.use_best.click(runs_tab.use_best, inputs=[history_tab.sweep],
                                          outputs=[*model.inputs, model.sized_note, history_tab.sweep_note],
                                          api_visibility="private")
        for event in [*model.loaded, used]:
            event.then(model_tab.summarize, inputs=summary_inputs, outputs=model.summary_outputs,
                       api_visibility="private")
        demo.load(model_tab.summarize, inputs=summary_inputs, outputs=model.summary_outputs, api_visibility="private")
        # The start-from runs for DPO/ORPO: the SFT runs finished by now (again whenever the dropdown is opened).
        demo.load(model_tab.refresh_adapters, inputs=[model.init_adapter], outputs=[model.init_adapter],
                  show_progress="hidden", api_visibility="private")
    return guard_events(demo)


QUEUE_SIZE = 64  # events waiting at once, all callers together; past it gradio answers "queue full" at once


def _auth() -> list[tuple[str, str]] | None:
    """STUDIO_AUTH="user:pass,user2:pass2" turns on a login; unset means none (a local, single-user app)."""
    pairs = [item.split(":", 1) for item in os.environ.get("STUDIO_AUTH", "").split(",") if ":" in item]
    return [(user.strip(), password) for user, password in pairs] or None


def _blocked_paths() -> list[str]:
    """Folders never served, whatever a handler returns: the studio's home (models, runs) and the Hugging Face
    cache and token. One holding gradio's upload folder or the downloads folder is left out (it would block them)."""
    from huggingface_hub import constants


    needed = [Path(gr.utils.get_upload_folder()).resolve(), downloads_dir().resolve()]
    candidates = [studio_home(), runs_dir(), Path.home() / ".cache" / "huggingface", Path(constants.HF_HOME),
                  Path(constants.HF_HUB_CACHE), Path(constants.HF_TOKEN_PATH)]
    blocked = []
    for path in (p.expanduser().resolve() for p in candidates):
        if not any(n == path or path in n.parents for n in needed) and str(path) not in blocked:
            blocked.append(str(path))
    return blocked


def use_queue(demo: gr.Blocks) -> gr.Blocks:
    """Gradio's queue, polling for new events every 20 ms instead of every 1 ms.

    Idle, gradio's queue loop wakes 1000 times a second (`sleep_when_free`): ~7% of a core on the web
    server's thread. On two cores each wake-up pre-empts one of a training job's two OpenMP threads,
    and the other waits for it at every op's barrier: the app trained at 89-115 tokens/s where the CLI
    trains the same run at 137, and drafted in 57-70 s instead of 44. At 20 ms an event waits at most
    20 ms longer to start, which no one sees next to a page's round trip.
    """
    demo.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE)
    queue = getattr(demo, "_queue", None)  # gradio has no setting for it
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, 0.02)
        queue.progress_update_sleep_when_free = max(getattr(queue, "progress_update_sleep_when_free", 0), 0.1)
    return demo


def launch_kwargs() -> dict:
    """Settings for `demo.launch`: upload limit (per file, and per request through `Shield`), login, no served
    folders beyond gradio's own cache, and the studio's and Hugging Face's folders blocked outright."""
    from starlette.middleware import Middleware

    return {
        "max_file_size": policy.limits().upload_bytes,
        "auth": _auth(),
        "allowed_paths": [],
        "blocked_paths": _blocked_paths(),
        "footer_links": ["api"],
        "app_kwargs": {"middleware": [Middleware(Shield)]},
    }


def start_settings(host: str | None = None, port: int | None = None, open_to_network: bool = False) -> dict:
    """Where to listen, and this process's mode decided from it: `--host` over GRADIO_SERVER_NAME over loopback,
    `--port` over GRADIO_SERVER_PORT over PORT over 7860. Returns `demo.launch`'s arguments plus `notice`, the
    line the start prints about who can reach the studio."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = port or int(os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT") or 7860)
    settings = launch_kwargs() | {"server_name": host, "server_port": port}
    notice = policy.configure(host, has_login=settings["auth"] is not None, open_to_network=open_to_network)
    return settings | {"notice": notice}


def prepare() -> None:
    """Once per process, before serving: runs left 'running' by a dead process become resumable, the runs left
    waiting in the queue go on (the first starts now), and the heavy imports start in the background so the page
    is up at once and the first click is quick."""
    active = jobs.active()
    runs.mark_interrupted(active_dirs={active.resolve()} if active else set())
    threading.Thread(target=warm_training_imports, name="warm-imports", daemon=True).start()
    if not policy.demo_mode():
        jobs.kick()
