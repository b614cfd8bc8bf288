"""Shared fixtures: one STUDIO_HOME for the session (the default model converts there once), a tiny
random Llama built from a config with the real tokenizer (no network), and per-test run folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("STUDIO_HOME", "/tmp/studio-test-home")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"


@pytest.fixture(scope="session")
def default_tokenizer():
    from studio.models import load_tokenizer

    return load_tokenizer("default", log=lambda _: None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_tokenizer) -> Path:
    """A 2-layer, 16-wide Llama with random weights and the default model's tokenizer and template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=len(default_tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=True,
        pad_token_id=default_tokenizer.pad_token_id, eos_token_id=default_tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    default_tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def pairs_csv(tmp_path):
    """Twelve made-up facts the tiny model can learn in a few steps."""
    path = tmp_path / "pairs.csv"
    rows = [(f"What is the code word for item {i}?", f"The code word for item {i} is zorblax{i}.") for i in range(12)]
    path.write_text("question,answer\n" + "".join(f"{q},{a}\n" for q, a in rows), encoding="utf-8")
    return path


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv("STUDIO_RUNS", str(root))
    return root


# ---- for the modules that serve the app: one runs folder and one finished tiny run per module ------------------


@pytest.fixture(scope="module")
def runs_env(tmp_path_factory):
    saved = os.environ.get("STUDIO_RUNS")
    os.environ["STUDIO_RUNS"] = str(tmp_path_factory.mktemp("app-runs"))
    yield Path(os.environ["STUDIO_RUNS"])
    if saved is None:
        os.environ.pop("STUDIO_RUNS", None)
    else:
        os.environ["STUDIO_RUNS"] = saved


@pytest.fixture(scope="module")
def tiny_run(runs_env, tiny_model_dir) -> str:
    """A finished 2-step run on the tiny model, trained in-process (demo mode refuses training through the app),
    in the module's own runs folder."""
    from studio import runs
    from studio.recipe import check, loads
    from studio.train import train

    recipe = check(loads(f"""
model: {{base: {tiny_model_dir}}}
data: {{max_length: 64, eval_size: 0}}
method: {{name: lora, r: 2, alpha: 4}}
training: {{epochs: 1, max_steps: 2, batch_size: 4, learning_rate: 0.001, save_steps: 50}}
"""))
    run_dir = train(recipe, ASSETS / "sample_qa.csv", runs.new_run_dir("tiny"), log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done", runs.read_status(run_dir)
    return run_dir.name
