"""The GPU paths, on the tiny random Llama: LoRA in bf16, QLoRA on 4-bit weights, and replies on the GPU.

The CPU suite cannot reach these lines, so they run wherever a CUDA device is present and skip elsewhere.
"""

from __future__ import annotations

import pytest
import torch
from test_train import tiny_recipe

from studio import runs
from studio.recipe import Recipe
from studio.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gpu_recipe(model_dir, *overrides: str) -> Recipe:
    return tiny_recipe(model_dir, "training.precision=auto", *overrides)  # bf16 where the GPU has it


def _learned(run_dir) -> list[float]:
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status
    losses = [m["loss"] for m in runs.read_metrics(run_dir) if "loss" in m]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    return losses


def test_lora_trains_on_the_gpu(tiny_model_dir, pairs_csv, tmp_path):
    run_dir = train(gpu_recipe(tiny_model_dir), pairs_csv, tmp_path / "run", log=lambda _: None)
    _learned(run_dir)
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_qlora_trains_on_four_bit_weights(tiny_model_dir, pairs_csv, tmp_path):
    pytest.importorskip("bitsandbytes")
    run_dir = train(gpu_recipe(tiny_model_dir, "method.name=qlora"), pairs_csv, tmp_path / "run",
                    log=lambda _: None)
    _learned(run_dir)
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    from studio.chat import ChatModel

    model = ChatModel(run_dir)  # replies from the same 4-bit base on the GPU
    assert next(model.model.parameters()).device.type == "cuda"
    assert any("4bit" in type(m).__name__ for m in model.model.modules())
    assert isinstance(model.reply("What is the code word for item 3?", max_new_tokens=8), str)


def test_chat_and_evaluation_reply_from_the_gpu(tiny_model_dir, pairs_csv, tmp_path):
    from studio.chat import ChatModel

    run_dir = train(gpu_recipe(tiny_model_dir, "training.max_steps=3"), pairs_csv, tmp_path / "run",
                    log=lambda _: None)
    model = ChatModel(run_dir)
    assert next(model.model.parameters()).device.type == "cuda"
    for tuned in (False, True):
        assert isinstance(model.reply("What is the code word for item 3?", tuned=tuned, max_new_tokens=8), str)
        replies = model.generate_batch([f"What is the code word for item {i}?" for i in range(5)], tuned=tuned,
                                       max_new_tokens=8)
        assert len(replies) == 5 and all(isinstance(r, str) for r in replies)
