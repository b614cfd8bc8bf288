"""A run's LoRA adapter as a GGUF LoRA file, so llama.cpp applies it over the base's own GGUF.

llama.cpp keeps one copy of the base and adds each loaded adapter's two small matmuls per layer at a scale set
per request: scale 1 is the tuned model, scale 0 the base, which is how chat compares both from one copy of the
weights. It also loads as Ollama's `ADAPTER` and llama-server's `--lora`.

Written with the `gguf` package, as `gguf_export` writes whole models: same tensor names, same Q/K row order.
PEFT's scale (alpha / r, or alpha / sqrt(r) with rsLoRA, per module where ranks differ) is folded into B, and
the file's alpha is 0, which llama.cpp reads as "apply as is": every rank and scaling rule comes out the same.
Only plain LoRA on the transformer's linear layers maps onto llama.cpp's adapters; DoRA, trained embeddings or
heads (`modules_to_save`) and other PEFT types get a GGUFError naming the reason, and chat stays on torch.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from studio.gguf_export import _LAYER_NAMES, ARCHITECTURES, GGUFError, permute, write_file

_LORA = re.compile(r"^(?:base_model\.model\.)?model\.layers\.(\d+)\.(.+)\.lora_([AB])\.weight$")


def _scaling(config: dict, module: str) -> float:
    """PEFT's scale for one module: its own rank and alpha where the patterns name it, else the adapter's."""
    rank = config.get("r", 8)
    alpha = config.get("lora_alpha", 8)
    for pattern, value in (config.get("rank_pattern") or {}).items():
        if re.search(rf"(^|\.){pattern}$", module):
            rank = value
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.search(rf"(^|\.){pattern}$", module):
            alpha = value
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def check_adapter(adapter_dir: Path) -> dict:
    """The adapter's config if llama.cpp can apply it as it trained, else a GGUFError saying why not."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise GGUFError(f"llama.cpp applies LoRA adapters only; this one is {config.get('peft_type')}.")
    if config.get("use_dora"):
        raise GGUFError("llama.cpp does not apply DoRA adapters.")
    if config.get("modules_to_save"):
        raise GGUFError("The adapter also trained whole modules (" + ", ".join(config["modules_to_save"])
                        + "), which a llama.cpp adapter cannot carry.")
    return config


def lora_tensors(adapter_dir: Path, base_config) -> list[tuple[str, np.ndarray]]:
    """(GGUF name, array) pairs: A as trained, B with PEFT's scale folded in and llama.cpp's Q/K row order."""
    from safetensors.numpy import load_file

    config = check_adapter(adapter_dir)
    if base_config.model_type not in ARCHITECTURES:
        raise GGUFError(f"llama.cpp chat is set up for Llama, Mistral, Qwen2 and Qwen3 bases; this one is "
                        f"'{base_config.model_type}'.")
    reorder = ARCHITECTURES[base_config.model_type][1]
    n_head = base_config.num_attention_heads
    n_kv = base_config.num_key_value_heads or n_head
    tensors = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    out = []
    for key in sorted(tensors):
        match = _LORA.match(key)
        if match is None or match.group(2) not in _LAYER_NAMES:
            raise GGUFError(f"The adapter has a tensor llama.cpp cannot apply: {key}.")
        layer, module, side = match.groups()
        array = tensors[key].astype(np.float32)
        if side == "B":
            array = array * _scaling(config, f"model.layers.{layer}.{module}")
            if reorder and module == "self_attn.q_proj":
                array = permute(array, n_head, n_head)
            elif reorder and module == "self_attn.k_proj":
                array = permute(array, n_head, n_kv)
        out.append((f"blk.{layer}.{_LAYER_NAMES[module]}.weight.lora_{side.lower()}", np.ascontiguousarray(array)))
    if not out:
        raise GGUFError("The adapter has no LoRA weights.")
    return out


def write_lora_gguf(adapter_dir: Path, base_config, out_file: Path) -> Path:
    """Write the adapter at `adapter_dir` (a PEFT folder) as a GGUF LoRA file for a base of `base_config`."""
    import gguf

    tensors = lora_tensors(adapter_dir, base_config)
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)

    def fill(writer):
        writer.add_type("adapter")
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 0.0)  # 0: llama.cpp applies B·A as written (scale folded in)
        for name, array in tensors:
            writer.add_tensor(name, array)  # fp32: f16 was no faster (bench/README.md), and this is what trained

    return write_file(out_file, ARCHITECTURES[base_config.model_type][0], fill)
