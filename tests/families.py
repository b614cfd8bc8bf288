"""Tiny random models of the families users pick most, each with its own chat template and end-of-turn token.

Every model is 2 layers and 16-32 wide, built from its transformers config (no network), with the default
model's BPE vocabulary plus the family's own turn markers as special tokens, and the family's chat template in
its real shape: ChatML for Qwen2/Qwen3 (answers end at <|im_end|>), Gemma 3's <start_of_turn>/<end_of_turn>
with the system text folded into the first user turn, Mistral's [INST] ... [/INST] closed by </s>, Phi-3's
<|user|>/<|assistant|> closed by <|end|>. The tokenizer's own eos is left as the default model's where the family's
end of turn differs, so a reply stops at the template's end of turn or not at all: what a test must see.
"""

from __future__ import annotations

from pathlib import Path

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}"
    "{% set rest = messages[1:] %}{% else %}{% set first = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' }}"
    "{% if loop.first %}{{ first }}{% endif %}{{ m['content'] | trim }}{{ '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] + '\n\n' %}"
    "{% set rest = messages[1:] %}{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}{% if m['role'] == 'user' %}{{ '[INST] ' + (sys if loop.first else '') + m['content'] + "
    "' [/INST]' }}{% else %}{{ m['content'] + '</s>' }}{% endif %}{% endfor %}"
)
PHI3_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
QWEN_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# family -> (config class, model class, chat template or None for the default model's, added special tokens,
#            the token a reply ends with)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", None, [], "<|im_end|>"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", QWEN_TEMPLATE, [], "<|im_end|>"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", QWEN_TEMPLATE, [], "<|im_end|>"),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", GEMMA_TEMPLATE, ["<start_of_turn>", "<end_of_turn>"],
               "<end_of_turn>"),
    "mistral": ("MistralConfig", "MistralForCausalLM", MISTRAL_TEMPLATE, ["[INST]", "[/INST]", "</s>"], "</s>"),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", PHI3_TEMPLATE,
             ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"], "<|end|>"),
}


def build_family_model(family: str, tokenizer, path: Path, seed: int = 0) -> Path:
    """A tiny random `family` model with its own template and markers, saved (weights and tokenizer) to `path`."""
    import copy

    import torch
    import transformers

    config_name, model_name, template, markers, _ = FAMILIES[family]
    tokenizer = copy.deepcopy(tokenizer)
    if markers:
        tokenizer.add_special_tokens({"additional_special_tokens": markers}, replace_extra_special_tokens=False)
    if template:
        tokenizer.chat_template = template
    dims = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id)
    if family == "qwen3":  # every Qwen3 has 128-wide heads, and transformers' GGUF reader assumes it
        dims.update(num_attention_heads=2, num_key_value_heads=1, head_dim=128)
    if family == "gemma3":
        dims["head_dim"] = 8
    if family == "gemma3":
        dims.update(sliding_window=64, query_pre_attn_scalar=8)
    config = getattr(transformers, config_name)(**dims)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
