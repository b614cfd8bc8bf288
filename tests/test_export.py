"""Exports: GGUF files read back by transformers, dataset files read back by load_data, and a Hub push
that fails cleanly offline without leaking the token.

GGUF checks use tiny random Llamas (the shared 16-wide one, and a 32-wide one so Q8_0's 32-value blocks
apply to every weight); each export-and-verify takes a few seconds, most of it spent parsing the vocab.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from studio import runs
from studio.cli import main
from studio.data import load_data
from studio.dataset_export import export_alpaca_json, export_openai_jsonl
from studio.export import export_run
from studio.gguf_export import GGUFError, export_gguf, permute, verify_gguf
from studio.hub import HubError, push_to_hub
from studio.recipe import Recipe, apply_overrides

SYSTEM = "You answer in one short sentence."
LLAMA_KEYS = ("general.architecture", "general.file_type", "llama.context_length", "llama.embedding_length",
              "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
              "llama.attention.head_count_kv", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon",
              "llama.rope.dimension_count", "llama.vocab_size", "tokenizer.ggml.model", "tokenizer.ggml.pre",
              "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
              "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
              "tokenizer.ggml.unknown_token_id", "tokenizer.chat_template")


@pytest.fixture
def lora_run(tiny_model_dir, tmp_path) -> Path:
    """A finished run on the tiny model whose adapter is random (not zero), so merging changes the weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    apply_overrides(Recipe(), [f"model.base={tiny_model_dir}", f"data.system_prompt={SYSTEM}"]).save(
        run_dir / "recipe.yaml")
    (run_dir / "README.md").write_text("# A tiny run\n", encoding="utf-8")
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(run_dir / "adapter")
    runs.write_status(run_dir, "done", "Finished.")
    return run_dir


def _fields(path: Path) -> tuple[dict, dict]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return reader.fields, {t.name: t for t in reader.tensors}


# ---------------------------------------------------------------------------------------------------- GGUF


def test_gguf_f16_from_a_run_matches_the_merged_model(lora_run, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "export" / "tiny.gguf"
    heard: list[str] = []
    assert export_run(lora_run, "gguf", out, log=heard.append) == out
    assert "next token agrees" in heard[0] and "tokenizer matches" in heard[0], heard
    assert not list(out.parent.glob(".studio-merge-*")), "the temporary merged folder is cleaned up"

    fields, tensors = _fields(out)
    assert all(key in fields for key in LLAMA_KEYS), [k for k in LLAMA_KEYS if k not in fields]
    assert fields["general.architecture"].contents() == "llama"
    assert fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert fields["llama.attention.head_count"].contents() == 2
    assert fields["llama.attention.head_count_kv"].contents() == 1
    assert "output.weight" not in tensors, "tied embeddings: llama.cpp reuses token_embd"
    assert tensors["blk.1.ffn_down.weight"].tensor_type.name == "F16"
    assert tensors["output_norm.weight"].tensor_type.name == "F32"

    # Q/K rows are in llama.cpp's order, and the weights are the merged ones, not the base model's.
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(lora_run / "adapter")).merge_and_unload().state_dict()
    attn = "model.layers.0.self_attn"
    for name, hf, heads in (("attn_q", "q_proj", 2), ("attn_k", "k_proj", 1)):
        expected = permute(merged[f"{attn}.{hf}.weight"].numpy(), 2, heads)
        got = np.asarray(tensors[f"blk.0.{name}.weight"].data, dtype=np.float32).reshape(expected.shape)
        assert np.abs(got - expected).max() < 1e-3
        assert not np.allclose(got, merged[f"{attn}.{hf}.weight"].numpy(), atol=1e-3), "permuted, not copied"

    modelfile = (out.parent / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./tiny.gguf\n")
    assert "<|im_start|>{{ .Role }}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert f'SYSTEM """{SYSTEM}"""' in modelfile


@pytest.fixture(scope="module")
def wide_model_dir(tmp_path_factory) -> Path:
    """32 wide, so every weight row is whole Q8_0 blocks, with a 300-token byte-level BPE trained on the spot:
    reading a GGUF back parses every vocab string in Python, and 49k of them cost seconds per read."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(["What is the capital of France? Paris is the capital of France.",
                             "<|im_start|>system user assistant"] * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        unk_token="<|endoftext|>", pad_token="<|im_end|>")
    tokenizer.chat_template = (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("wide-llama")
    config = LlamaConfig(
        vocab_size=len(tokenizer) + 18, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def test_gguf_q8_0_quantizes_weights_and_keeps_the_next_token(wide_model_dir, tmp_path):
    out = export_gguf(wide_model_dir, tmp_path / "wide-q8.gguf", "q8_0")
    fields, tensors = _fields(out)
    assert fields["general.file_type"].contents() == 7  # MOSTLY_Q8_0
    assert "output.weight" in tensors, "untied embeddings keep their own output head"
    types = {name: t.tensor_type.name for name, t in tensors.items()}
    assert {t for name, t in types.items() if "norm" not in name} == {"Q8_0"}, types
    assert {t for name, t in types.items() if "norm" in name} == {"F32"}, types

    report = verify_gguf(out, wide_model_dir, outtype="q8_0")
    assert report["ok"] and report["argmax_equal"] and report["tokens_equal"], report
    assert 0 < report["relative_diff"] < 0.05, report
    tokens = [fields["tokenizer.ggml.tokens"].contents(i) for i in range(len(fields["tokenizer.ggml.tokens"].data))]
    assert len(tokens) == fields["llama.vocab_size"].contents() and tokens[-1].startswith("[PAD"), "padded vocab"
    assert fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    modelfile = (tmp_path / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./wide-q8.gguf\n") and "SYSTEM" not in modelfile, "no system prompt: none set"


def test_gguf_refuses_what_it_cannot_write(tmp_path, lora_run):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(GGUFError, match="Llama, Mistral, Qwen2 and Qwen3 models"):
        export_gguf(tmp_path / "gpt2", tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="ending in .gguf"):
        export_run(lora_run, "gguf", tmp_path / "model")
    with pytest.raises(ValueError, match="q4"):
        export_run(lora_run, "gguf", tmp_path / "m.gguf", quant="q4")
    assert not (tmp_path / "x.gguf").exists()


# ------------------------------------------------------------------------------------------------ datasets


@pytest.fixture
def chats_jsonl(tmp_path) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": "What colour is the sky?"},
                      {"role": "assistant", "content": "Blue, on a clear day."}]},
        {"messages": [{"role": "system", "content": "You are a pirate."},
                      {"role": "user", "content": "Where is the gold?"},
                      {"role": "assistant", "content": "Buried, matey."}]},
        {"messages": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "Seven."},
                      {"role": "user", "content": "Another one?"}, {"role": "assistant", "content": "Eleven."}]},
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_openai_jsonl_round_trips_through_load_data(chats_jsonl, tmp_path):
    examples = load_data(chats_jsonl).examples
    out = tmp_path / "openai.jsonl"
    assert export_openai_jsonl(examples, out, system_prompt=SYSTEM) == 3
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(line) == {"messages"} for line in lines)
    back = load_data(out)
    assert back.ok and not back.problems
    assert back.examples[0].messages[0] == {"role": "system", "content": SYSTEM}
    assert back.examples[1].messages[0] == {"role": "system", "content": "You are a pirate."}, "own system kept"
    assert [e.messages[-4:] for e in back.examples][2] == examples[2].messages, "multi-turn stays whole"
    assert [(e.question, e.answer) for e in back.examples] == [(e.question, e.answer) for e in examples]


def test_alpaca_json_keeps_pairs_and_flattens_multi_turn(chats_jsonl, tmp_path):
    examples = load_data(chats_jsonl).examples
    out = tmp_path / "alpaca.json"
    assert export_alpaca_json(examples, out) == 3
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert rows[0] == {"instruction": "What colour is the sky?", "input": "", "output": "Blue, on a clear day."}
    assert rows[1]["system"] == "You are a pirate."
    assert rows[2] == {"instruction": "Another one?", "input": "User: Name a prime.\nAssistant: Seven.",
                       "output": "Eleven."}
    back = load_data(out)
    assert back.ok and len(back.examples) == 3
    assert [(e.question, e.answer) for e in back.examples[:2]] == [(e.question, e.answer) for e in examples[:2]]
    assert back.examples[1].messages[0] == {"role": "system", "content": "You are a pirate."}
    assert back.examples[2].question == "Another one?\n\nUser: Name a prime.\nAssistant: Seven."


def test_cli_export_data(chats_jsonl, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["export-data", str(chats_jsonl), "--format", "openai", "--out", str(out)]) == 0
    assert len(load_data(out).examples) == 3
    capsys.readouterr()
    assert main(["export-data", str(tmp_path / "missing.csv"), "--format", "alpaca", "--out",
                 str(tmp_path / "a.json")]) == 2
    assert "cannot be exported" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()


# ------------------------------------------------------------------------------------------------------ hub


def test_hub_push_offline_fails_clearly_without_leaking_the_token(lora_run, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    token = "hf_" + "StudioSecretToken" * 2
    before = {p: p.read_bytes() for p in lora_run.rglob("*") if p.is_file()}
    with pytest.raises(HubError) as info:
        push_to_hub(lora_run, "someone/tiny-run", token, what="adapter")
    message = str(info.value)
    assert message.startswith("Could not reach the Hugging Face Hub") and "your run is untouched" in message
    assert token not in "".join(traceback.format_exception(info.value))
    after = {p: p.read_bytes() for p in lora_run.rglob("*") if p.is_file()}
    assert after == before, "the run folder is only read"
    assert all(token.encode() not in data for data in after.values())
