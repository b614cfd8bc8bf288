"""QLoRA on the CPU: bitsandbytes quantizes the base to NF4 in RAM and LoRA trains on top; the run then chats,
evaluates and exports like any other. On a GPU the same recipe keeps its paged optimizer (tests/test_gpu.py)."""

from __future__ import annotations

import pytest
import torch
from test_train import tiny_recipe

from studio import runs
from studio.train import train

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path; tests/test_gpu.py has the GPU's")


def test_the_base_loads_as_nf4_on_the_cpu(tiny_model_dir):
    from studio.models import count_parameters, load_model

    model = load_model(str(tiny_model_dir), "qlora", log=lambda _: None)
    four_bit = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert len(four_bit) == 2 * 7  # q, k, v, o, gate, up, down in each of the 2 layers
    weight = four_bit[0].weight
    assert weight.device.type == "cpu" and weight.quant_state.quant_type == "nf4" and weight.quant_state.nested
    lora = load_model(str(tiny_model_dir), "lora", log=lambda _: None)
    assert count_parameters(model)[1] == count_parameters(lora)[1]  # 4-bit weights counted at their real number


@pytest.fixture(scope="module")
def qlora_run(tiny_model_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("qlora-data") / "pairs.csv"
    rows = [(f"What is the code word for item {i}?", f"The code word for item {i} is zorblax{i}.") for i in range(12)]
    data.write_text("question,answer\n" + "".join(f"{q},{a}\n" for q, a in rows), encoding="utf-8")
    run_dir = train(tiny_recipe(tiny_model_dir, "method.name=qlora"), data, tmp_path_factory.mktemp("qlora") / "run",
                    log=lambda _: None)
    return run_dir, data


def test_qlora_trains_and_learns_on_the_cpu(qlora_run):
    run_dir, _ = qlora_run
    status = runs.read_status(run_dir)
    assert status["state"] == "done", (status, (run_dir / "train.log").read_text()[-2000:])
    losses = [m["loss"] for m in runs.read_metrics(run_dir) if "loss" in m]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.03, losses
    log = (run_dir / "train.log").read_text()
    assert "QLoRA on the CPU" in log and "AdamW" in log  # says which optimizer replaces the paged one, and why
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_a_qlora_run_chats_evaluates_and_exports_on_the_cpu(qlora_run, tmp_path):
    from studio.chat import ChatModel
    from studio.evaluate import evaluate_file
    from studio.export import export_run

    run_dir, data = qlora_run
    chat = ChatModel(run_dir)
    for tuned in (False, True):
        assert isinstance(chat.reply("What is the code word for item 3?", tuned=tuned, max_new_tokens=8), str)
    report = evaluate_file(run_dir, data, max_new_tokens=8)
    assert len(report["rows"]) == 12
    merged = export_run(run_dir, "merged", tmp_path / "merged")
    assert (merged / "model.safetensors").exists() and (merged / "recipe.yaml").exists()
    lines = []
    gguf = export_run(run_dir, "gguf", tmp_path / "run.gguf", log=lines.append)
    assert gguf.exists() and "agrees" in lines[0], lines
