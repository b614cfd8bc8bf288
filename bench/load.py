"""A bounded load test of the scripting API: many chat users while one run trains and others try to start runs.

    python bench/load.py [--users 10] [--calls 2] [--tokens 8]

Starts the studio on a free localhost port (runs in a temp folder), builds a tiny random Llama with the default
model's tokenizer (2 layers, 16 wide: the point is the server, not the model), trains one chat run on it, then
at once: one training run (40 steps), `--users` gradio_client users each asking `--calls` questions through
/api_compare, and 2 more users uploading data to /api_train (their runs queue behind the training one, and they
cancel them through /api_queue_cancel). Prints the compare latencies (p50/p90/p99, seconds) and any unexpected
error. Needs the default model converted once under STUDIO_HOME (`make setup`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SAMPLE = REPO / "assets" / "sample_qa.csv"
QUESTIONS = ["Who founded the Brindlewick Ferry Company?", "When does the first ferry leave?",
             "How much is a ticket?", "Can I bring a bicycle?"]


def tiny_recipe(base: str | Path, steps: int) -> str:
    return (f"model: {{base: '{base}'}}\n"
            "data: {max_length: 64, eval_size: 0}\n"
            "method: {name: lora, r: 2, alpha: 4}\n"
            f"training: {{epochs: 1, max_steps: {steps}, batch_size: 2, learning_rate: 0.001, save_steps: 1000}}\n")


def make_tiny_model(path: Path) -> Path:
    """A 2-layer, 16-wide Llama with random weights and the default model's tokenizer (as tests/conftest.py)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from studio.models import load_tokenizer

    tokenizer = load_tokenizer("default", log=lambda _: None)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@contextlib.contextmanager
def serve():
    """The studio on a free localhost port (in this process); yields its URL."""
    from studio.jobs import jobs
    from studio.ui.app import build_app, launch_kwargs, use_queue

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = build_app()
    use_queue(demo)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        jobs.wait(60)


def wait_done(client, run_id: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    status: dict = {}
    while time.time() < deadline:
        status = client.predict(run_id, api_name="/api_status")
        if status["state"] not in ("queued", "running", "stopping"):
            return status
        time.sleep(0.25)
    return status


def percentiles(values: list[float]) -> dict:
    if len(values) < 2:
        return {"p50": values[0], "p90": values[0], "p99": values[0]} if values else {}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def run_load(url: str, chat_run: str, model_dir: Path, users: int = 10, calls: int = 2, tokens: int = 8,
             uploaders: int = 2, train_steps: int = 40) -> dict:
    """Everything at once against `url`; returns latencies, percentiles, errors and the training run's status."""
    from gradio_client import Client, handle_file

    main = Client(url, verbose=False)
    run_id = main.predict(handle_file(str(SAMPLE)), tiny_recipe(model_dir, train_steps), api_name="/api_train")
    latencies: list[float] = []
    errors: list[str] = []
    refusals: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(users + uploaders)

    def chat_user(n: int) -> None:
        try:
            client = Client(url, verbose=False)
            start.wait(30)
            for i in range(calls):
                t0 = time.perf_counter()
                replies = client.predict(chat_run, QUESTIONS[(n + i) % len(QUESTIONS)], tokens,
                                         api_name="/api_compare")
                took = time.perf_counter() - t0
                with lock:
                    latencies.append(took)
                    if set(replies) != {"base", "tuned"}:
                        errors.append(f"user {n}: unexpected reply {replies!r}")
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            with lock:
                errors.append(f"user {n}: {type(exc).__name__}: {exc}")

    def uploader(n: int) -> None:
        try:
            client = Client(url, verbose=False)
            start.wait(30)
            queued = client.predict(handle_file(str(SAMPLE)), tiny_recipe(model_dir, 2), api_name="/api_train")
            state = client.predict(queued, api_name="/api_status")
            waiting = [r["run_id"] for r in client.predict(api_name="/api_queue")]
            client.predict(queued, api_name="/api_queue_cancel")  # the load test trains one run only
            with lock:
                if state["state"] == "queued" and queued in waiting:
                    refusals.append(f"uploader {n}: queued as {queued}, then cancelled")
                else:
                    errors.append(f"uploader {n}: not queued while a run trained: {state}")
        except Exception as exc:  # noqa: BLE001
            with lock:
                errors.append(f"uploader {n}: {exc}")

    threads = [threading.Thread(target=chat_user, args=(n,)) for n in range(users)]
    threads += [threading.Thread(target=uploader, args=(n,)) for n in range(uploaders)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    chats_seconds = time.perf_counter() - t0
    status = wait_done(main, run_id)
    return {"latencies": latencies, "percentiles": percentiles(latencies), "errors": errors, "refusals": refusals,
            "train": status, "chats_seconds": chats_seconds, "expected_calls": users * calls}


def prepare_chat_run(url: str, model_dir: Path) -> str:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    run_id = client.predict(handle_file(str(SAMPLE)), tiny_recipe(model_dir, 2), api_name="/api_train")
    status = wait_done(client, run_id)
    if status.get("state") != "done":
        raise RuntimeError(f"the chat run did not finish: {status}")
    return run_id


def report(result: dict) -> str:
    p = result["percentiles"]
    return (f"{len(result['latencies'])}/{result['expected_calls']} compare calls in {result['chats_seconds']:.1f} s; "
            f"latency p50 {p.get('p50', 0):.2f} s, p90 {p.get('p90', 0):.2f} s, p99 {p.get('p99', 0):.2f} s; "
            f"train {result['train'].get('state')} at step {result['train'].get('step')}; "
            f"{len(result['refusals'])} uploads queued behind it (then cancelled); {len(result['errors'])} errors")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIO_RUNS"] = str(Path(tmp) / "runs")
        model_dir = make_tiny_model(Path(tmp) / "tiny-llama")
        with serve() as url:
            chat_run = prepare_chat_run(url, model_dir)
            result = run_load(url, chat_run, model_dir, users=args.users, calls=args.calls, tokens=args.tokens)
    print(report(result))
    for error in result["errors"]:
        print("error:", error)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
