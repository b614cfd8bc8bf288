"""A run's adapter as a GGUF LoRA file, and llama.cpp applying it over the base's GGUF as PEFT does on torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.gguf_export import GGUFError, export_gguf, permute
from studio.gguf_lora import write_lora_gguf

PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A random (non-zero) LoRA on every linear layer of the tiny Llama, with a scale that is not 1 (alpha 12, r 4)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=12, target_modules="all-linear", init_lora_weights=False))
    path = tmp_path_factory.mktemp("adapter") / "adapter"
    peft.save_pretrained(path)
    return path


def test_lora_gguf_has_llama_cpps_names_scale_and_row_order(adapter, tiny_model_dir, tmp_path):
    from gguf import GGUFReader
    from safetensors.numpy import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    out = write_lora_gguf(adapter, config, tmp_path / "lora.gguf")
    reader = GGUFReader(out)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 0.0  # the scale is in B
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    names = {f"blk.{i}.{m}.weight.lora_{s}" for i in range(2) for s in "ab"
             for m in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")}
    assert set(tensors) == names
    source = load_file(str(adapter / "adapter_model.safetensors"))
    key = "base_model.model.model.layers.1.self_attn.{}.lora_{}.weight"
    np.testing.assert_array_equal(tensors["blk.1.attn_v.weight.lora_a"], source[key.format("v_proj", "A")])
    np.testing.assert_allclose(tensors["blk.1.attn_v.weight.lora_b"], source[key.format("v_proj", "B")] * 3.0)
    # Q and K rows in llama.cpp's RoPE order, as the base's own GGUF has them (2 query heads, 1 key head)
    np.testing.assert_allclose(tensors["blk.1.attn_q.weight.lora_b"], permute(source[key.format("q_proj", "B")] * 3.0,
                                                                              2, 2))
    np.testing.assert_allclose(tensors["blk.1.attn_k.weight.lora_b"], permute(source[key.format("k_proj", "B")] * 3.0,
                                                                              2, 1))


def test_adapters_llama_cpp_cannot_apply_are_refused(adapter, tiny_model_dir, tmp_path):
    import shutil

    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    for change, said in (({"use_dora": True}, "DoRA"), ({"modules_to_save": ["lm_head"]}, "lm_head"),
                         ({"peft_type": "IA3"}, "IA3")):
        bad = tmp_path / said
        shutil.copytree(adapter, bad)
        settings = json.loads((bad / "adapter_config.json").read_text())
        (bad / "adapter_config.json").write_text(json.dumps({**settings, **change}))
        with pytest.raises(GGUFError, match=said):
            write_lora_gguf(bad, config, tmp_path / f"{said}.gguf")
    assert not list(tmp_path.glob("*.gguf")), "nothing half-written"


def test_chat_on_another_base_stays_on_torch_and_says_why(lora_tiny_run):
    from studio.chat import ChatModel

    chat = ChatModel(lora_tiny_run)
    assert chat.llama is None and chat.engine.startswith("torch (")
    assert chat.reply("Hi", max_new_tokens=4) is not None


@pytest.fixture
def lora_tiny_run(adapter, tiny_model_dir, tmp_path) -> Path:
    import shutil

    from studio import runs
    from studio.recipe import Recipe, apply_overrides

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    apply_overrides(Recipe(), [f"model.base={tiny_model_dir}"]).save(run_dir / "recipe.yaml")
    shutil.copytree(adapter, run_dir / "adapter")
    runs.write_status(run_dir, "done", "Finished.")
    return run_dir


def test_llama_cpp_applies_the_adapter_as_peft_does(adapter, tiny_model_dir, tmp_path):
    """Logits of the tiny model through llama.cpp (f16 GGUF + the GGUF LoRA) against torch, adapter off and on."""
    pytest.importorskip("llama_cpp")
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from studio.kernels.gguf_decode import Engine

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                        return_dict=True)["input_ids"]
    base_file = export_gguf(tiny_model_dir, tmp_path / "tiny-f16.gguf", "f16")
    lora_file = write_lora_gguf(adapter, AutoConfig.from_pretrained(tiny_model_dir), tmp_path / "lora.gguf")
    engine = Engine(base_file, threads=1, n_ctx=256, n_seq=2)
    engine.load_adapter(lora_file)

    def llama_logits(use):
        engine.use(use)
        engine.clear()
        return engine._decode([(t, i, 0, i == len(ids) - 1) for i, t in enumerate(ids)], np.copy)[len(ids) - 1]

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                                      str(adapter)).eval()
    with torch.no_grad():
        tuned = model(torch.tensor([ids])).logits[0, -1].numpy()
        with model.disable_adapter():
            base = model(torch.tensor([ids])).logits[0, -1].numpy()
    got_base, got_tuned = llama_logits(None), llama_logits(lora_file)
    scale = np.abs(tuned - base).max()
    assert scale > 0.05, "the adapter must change the logits for this test to mean anything"
    np.testing.assert_allclose(got_base, base, atol=0.02 * np.abs(base).max())
    # what the adapter adds, as llama.cpp applies it: same as PEFT's (a wrong scale or Q/K order fails here)
    np.testing.assert_allclose(got_tuned - got_base, tuned - base, atol=0.05 * scale)
    engine.unload_adapter(lora_file)  # on while freed: switched off first, and the base answers as before
    assert engine.adapters == {} and engine.active is None
    np.testing.assert_allclose(llama_logits(None), got_base, atol=1e-5)
    engine.close()
