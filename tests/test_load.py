"""A bounded load test (the harness is bench/load.py): 10 gradio_client users x 2 /api_compare calls on a finished
tiny run, while one tiny run trains and 2 more users upload data to /api_train. Zero unexpected errors, every
chat answered, the uploads queued behind the training run (then cancelled), the run done; the percentiles
are printed."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "load.py"


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("studio_bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_chat_users_while_training(load, tiny_model_dir, runs_root):
    t0 = time.perf_counter()
    with load.serve() as url:
        chat_run = load.prepare_chat_run(url, tiny_model_dir)
        result = load.run_load(url, chat_run, tiny_model_dir, users=10, calls=2, tokens=8, uploaders=2)
    print("\n" + load.report(result))
    assert result["errors"] == []
    assert len(result["latencies"]) == 20
    assert len(result["refusals"]) == 2
    assert result["train"]["state"] == "done", result["train"]
    assert time.perf_counter() - t0 < 60
