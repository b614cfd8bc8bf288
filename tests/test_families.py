"""The model families users pick most, each through the whole walk on a tiny random model of its own shape:
check the data with its chat template -> train (LoRA, QLoRA) -> chat -> evaluate -> merged export -> GGUF export
where Studio writes that family, and a plain refusal where it does not. See tests/families.py for the models."""

from __future__ import annotations

import pytest
import torch
from families import FAMILIES, build_family_model
from test_train import assert_same_loss_and_gradients

from studio import runs
from studio.data import Example, end_of_turn_ids, tokenize_example
from studio.gguf_export import GGUFError
from studio.recipe import Recipe, apply_overrides
from studio.train import train

GGUF_FAMILIES = {"llama", "mistral", "qwen2", "qwen3"}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory, default_tokenizer):
    name = request.param
    return name, build_family_model(name, default_tokenizer, tmp_path_factory.mktemp(f"tiny-{name}"))


def family_recipe(model_dir, *overrides: str) -> Recipe:
    return apply_overrides(Recipe(), [
        f"model.base={model_dir}", "data.max_length=96", "data.eval_size=2", "data.paraphrases=0",
        "data.question_forms=0", "data.replay=0", "data.system_prompt=You answer in one short sentence.",
        "training.batch_size=4", "training.learning_rate=0.01", "training.max_steps=3", "training.save_steps=50",
        "training.precision=fp32", "method.r=4", "method.alpha=8", *overrides,
    ])


def test_the_answer_mask_ends_on_the_familys_own_end_of_turn(family):
    """The model learns to close its answer with the token the template closes it with, and generation stops
    there even though the tokenizer's eos is another token (Gemma, Phi-3, Mistral here)."""
    from transformers import AutoTokenizer

    name, model_dir = family
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    end = tokenizer.convert_tokens_to_ids(FAMILIES[name][4])
    assert end_of_turn_ids(tokenizer) == [end]
    messages = [{"role": "user", "content": "What is the code?"}, {"role": "assistant", "content": "Zorb 7."}]
    example = Example(messages, 1)
    enc = tokenize_example(tokenizer, example, "Be brief.")
    answer = [t for t, m in zip(enc["input_ids"], enc["completion_mask"], strict=True) if m]
    assert end in answer and "Zorb 7." in tokenizer.decode(answer)
    assert "Be brief." in tokenizer.decode(enc["input_ids"])  # the system text reaches the model in every template


def test_packed_rows_give_each_example_its_own_attention_or_fall_back(family):
    """Where packed attention applies, an example in a packed row sees exactly what it sees alone: with the
    sliding window of Gemma 3's local layers (64 positions here) too, in a row and an example longer than it."""
    from transformers import AutoModelForCausalLM

    from studio.kernels.packed_attention import use_packed_attention

    _, model_dir = family
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    lens = [5, 90, 7]
    ids = torch.randint(10, 1000, (1, sum(lens)), generator=torch.Generator().manual_seed(0))
    pos = torch.cat([torch.arange(n) for n in lens])[None]
    applied = use_packed_attention(model)
    with torch.no_grad():
        alone = [model(input_ids=ids[:, s:s + n], use_cache=False).logits[0] for s, n in ((0, 5), (5, 90), (95, 7))]
        row = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0]
    if applied:
        assert torch.allclose(row, torch.cat(alone), atol=1e-4)
    else:  # the model keeps its own attention: packed rows then cost more, but train the same
        assert model.config._attn_implementation == "sdpa"


@pytest.fixture(scope="module")
def lora_run(family, tmp_path_factory):
    import csv

    name, model_dir = family
    data = tmp_path_factory.mktemp(f"data-{name}") / "pairs.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answer"])
        writer.writerows((f"What is the code for box {i}?", f"Box {i} uses code zorb{i}.") for i in range(10))
    run_dir = train(family_recipe(model_dir), data, tmp_path_factory.mktemp(f"run-{name}") / "run",
                    log=lambda _: None)
    return name, run_dir, data


def test_lora_trains_and_the_run_chats_evaluates_and_exports(lora_run, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.chat import ChatModel
    from studio.evaluate import evaluate_file
    from studio.export import export_run
    from studio.kernels.complete import stop_ids

    name, run_dir, data = lora_run
    status = runs.read_status(run_dir)
    assert status["state"] == "done", (status, (run_dir / "train.log").read_text()[-2000:])
    losses = [m["loss"] for m in runs.read_metrics(run_dir) if "loss" in m]
    assert len(losses) == 3 and all(loss == loss for loss in losses)

    chat = ChatModel(run_dir)
    assert chat.tokenizer.convert_tokens_to_ids(FAMILIES[name][4]) in stop_ids(chat.model, chat.tokenizer)
    assert isinstance(chat.reply("What is the code for box 3?", max_new_tokens=6), str)
    assert isinstance(chat.reply("What is the code for box 3?", tuned=False, max_new_tokens=6), str)
    report = evaluate_file(run_dir, data, max_new_tokens=6)
    assert len(report["rows"]) == 10

    merged = export_run(run_dir, "merged", tmp_path / "merged")
    ids = chat.tokenizer("What is the code for box 3?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(runs_base(run_dir)),
                                              str(run_dir / "adapter")).eval()(ids).logits
        exported = AutoModelForCausalLM.from_pretrained(merged).eval()(ids).logits
    assert torch.allclose(reference, exported, atol=1e-4)


def runs_base(run_dir):
    from studio.recipe import load

    return load(run_dir / "recipe.yaml").model.base


def test_gguf_export_writes_the_families_it_knows_and_refuses_the_rest(lora_run, tmp_path):
    from studio.export import export_run

    name, run_dir, _ = lora_run
    out = tmp_path / f"{name}.gguf"
    if name in GGUF_FAMILIES:
        lines = []
        export_run(run_dir, "gguf", out, log=lines.append)
        assert out.exists() and "agree" in " ".join(lines).lower(), lines
    else:
        with pytest.raises(GGUFError, match=name):
            export_run(run_dir, "gguf", out)
        assert not out.exists()


def test_qlora_trains_on_the_cpu_for_every_family(family, tmp_path):
    import csv

    name, model_dir = family
    data = tmp_path / "pairs.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["question", "answer"]] + [[f"Code {i}?", f"It is zorb{i}."] for i in range(8)])
    run_dir = train(family_recipe(model_dir, "method.name=qlora", "training.max_steps=2"), data, tmp_path / "run",
                    log=lambda _: None)
    status = runs.read_status(run_dir)
    assert status["state"] == "done", (status, (run_dir / "train.log").read_text()[-2000:])
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_a_shared_prefix_row_trains_as_its_copies_would(family):
    """The system prompt kept once a row (SharedPrefixCollator): the same loss and gradients as every example
    carrying its own copy, with an answer that runs past Gemma 3's sliding window of its prefix."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from studio.kernels.packed_attention import SharedPrefixCollator

    _, model_dir = family
    gen = torch.Generator().manual_seed(0)
    prefix = torch.randint(10, 1000, (12,), generator=gen).tolist()
    examples = []
    for n_prompt, n_answer in ((4, 70), (9, 3), (2, 8)):
        ids = prefix + torch.randint(10, 1000, (n_prompt + n_answer,), generator=gen).tolist()
        examples.append({"input_ids": ids, "labels": [-100] * (len(prefix) + n_prompt) + ids[-n_answer:]})
    inner = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True, pad_to_multiple_of=64)
    assert_same_loss_and_gradients(model_dir, inner(examples),
                                   SharedPrefixCollator(inner, pad_token_id=0, pad_to_multiple_of=64)(examples))


def test_a_template_that_refuses_a_system_turn_is_refused_before_training(default_tokenizer, tmp_path):
    """Older Mistral templates raise on a system message: said before the first step, with the fix."""
    from transformers import AutoTokenizer

    model_dir = build_family_model("mistral", default_tokenizer, tmp_path / "strict")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('Conversation roles must "
                               "alternate user/assistant/user/assistant/...') }}{% endif %}" + tokenizer.chat_template)
    tokenizer.save_pretrained(model_dir)
    data = tmp_path / "pairs.csv"
    data.write_text("question,answer\n" + "".join(f"Code {i}?,It is zorb{i}.\n" for i in range(6)), encoding="utf-8")
    run_dir = train(family_recipe(model_dir), data, tmp_path / "run", log=lambda _: None)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "Clear data.system_prompt" in status["message"], status
    assert "alternate" in status["message"] and not runs.read_metrics(run_dir)
    run_dir = train(family_recipe(model_dir, "data.system_prompt="), data, tmp_path / "run2", log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done"
