"""GGUF export of Llama, Mistral, Qwen2 and Qwen3 models, so a tuned model runs in llama.cpp, Ollama and LM Studio.

The file is written with the `gguf` package's GGUFWriter, not llama.cpp's convert_hf_to_gguf.py: that
script is not on PyPI and needs the llama.cpp tree. The price is scope: the families whose weights map one to
one onto llama.cpp's tensors (`ARCHITECTURES`), with plain RoPE and a byte-level BPE tokenizer (the default
SmolLM2 and many small chat models). Anything else (Gemma's shifted norms and SentencePiece vocabulary, Phi-3's
fused projections) gets a plain error naming the script to use, never a file that loads but babbles.

`verify_gguf` reads the file back with transformers, an independent reader, and compares next-token
logits with the source folder, so a wrong key or a missed Q/K permutation fails loudly here and not
silently in someone's chat window.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import torch

OUTTYPES = ("f16", "q8_0")
DEFAULT_PROMPT = "What is the capital of France?"
# Verification thresholds: max |logit diff| as a share of the largest |logit|. f16 rounding alone stays
# near 1e-3; Q8_0 adds per-block rounding of every weight, which 135M-parameter models feel more.
TOLERANCE = {"f16": 5e-2, "q8_0": 0.2}
_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_LAYER_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",  # Qwen3's per-head norms
}
# transformers model_type -> (llama.cpp architecture, Q/K rows reordered for llama.cpp's RoPE). Mistral is written
# as llama, as llama.cpp's own converter does; Qwen's RoPE already pairs dimensions the way llama.cpp reads them.
ARCHITECTURES = {"llama": ("llama", True), "mistral": ("llama", True), "qwen2": ("qwen2", False),
                 "qwen3": ("qwen3", False)}
_GLOBAL_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                 "lm_head.weight": "output.weight"}
# The split regexes of the byte-level BPE families, by llama.cpp's name for them: Qwen2/Qwen3 split digits one by
# one, Llama 3 in groups of up to three.
_WORDS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_REST = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_SPLIT_REGEXES = {_WORDS + r"\p{N}" + _REST: "qwen2", _WORDS + r"\p{N}{1,3}" + _REST: "llama-bpe"}
_CONVERT_HINT = "llama.cpp's convert_hf_to_gguf.py handles it: export the merged model and run that script on it."
_CHATML_TEMPLATE = (
    '{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
    '{{- range .Messages }}{{- if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
    '{{ end }}{{- end }}<|im_start|>assistant\n'
)


class GGUFError(ValueError):
    """The model cannot be written as GGUF here, or the written file does not match it; the message says why."""


def export_gguf(model_dir: Path, out_file: Path, outtype: str = "f16", system_prompt: str = "") -> Path:
    """Write the HF model folder `model_dir` to `out_file` (.gguf) plus an Ollama Modelfile beside it."""
    from transformers import AutoConfig, AutoTokenizer

    if outtype not in OUTTYPES:
        raise GGUFError(f"Unknown GGUF type '{outtype}'. Use one of: {', '.join(OUTTYPES)}.")
    model_dir, out_file = Path(model_dir), Path(out_file)
    config = AutoConfig.from_pretrained(model_dir)
    _check_supported(config)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer_json = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))

    def fill(writer):
        _add_metadata(writer, config, outtype)
        _add_tokenizer(writer, tokenizer, tokenizer_json, config.vocab_size)
        for name, array, qtype in _tensors(model_dir, config, outtype):
            writer.add_tensor(name, array, raw_dtype=qtype)

    write_file(out_file, ARCHITECTURES[config.model_type][0], fill)
    write_modelfile(out_file, tokenizer, system_prompt)
    return out_file


def write_file(out_file: Path, architecture: str, fill) -> Path:
    """A GGUF file written whole or not at all: `fill(writer)` adds its keys and tensors to a temporary file that
    replaces `out_file` only once complete, so a reader never maps half a file."""
    import gguf

    out_file = Path(out_file)
    tmp = out_file.with_name(f".{out_file.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, architecture)
    try:
        fill(writer)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_file)
    finally:
        tmp.unlink(missing_ok=True)
    return out_file


def _check_supported(config) -> None:
    if config.model_type not in ARCHITECTURES or not all(a.endswith("ForCausalLM") for a in config.architectures or []):
        raise GGUFError(f"Studio writes GGUF for Llama, Mistral, Qwen2 and Qwen3 models; this one is "
                        f"'{config.model_type}'. " + _CONVERT_HINT)
    rope_type = _rope(config).get("rope_type", "default")
    if rope_type != "default":
        raise GGUFError(f"This model uses '{rope_type}' RoPE scaling, which Studio's GGUF export does not write. "
                        + _CONVERT_HINT)


def _rope(config) -> dict:
    """transformers 5 keeps RoPE settings in `rope_parameters`; older folders in `rope_theta`/`rope_scaling`."""
    params = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    if "type" in params:
        params.setdefault("rope_type", params["type"])
    return params


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _add_metadata(writer, config, outtype: str) -> None:
    import gguf

    head_dim = _head_dim(config)
    writer.add_type("model")
    writer.add_name(str(getattr(config, "_name_or_path", "") or "studio-export").rstrip("/").split("/")[-1])
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    writer.add_rope_freq_base(float(_rope(config)["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_rope_dimension_count(head_dim)
    # Qwen3 readers take the head size from these keys alone (their default is 128), so Qwen3 always has them.
    if head_dim != config.hidden_size // config.num_attention_heads or config.model_type == "qwen3":
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_vocab_size(config.vocab_size)
    file_type = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _pre_tokenizer(spec: dict | None) -> str:
    """llama.cpp's name for the pre-tokenizer: it picks the regex that splits text before BPE.

    A wrong one tokenizes text differently from training without any error, so unknown shapes are refused.
    """
    parts = (spec or {}).get("pretokenizers", [spec] if spec else [])
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Split", "ByteLevel"] and not parts[1].get("use_regex", True):
        name = _SPLIT_REGEXES.get(parts[0].get("pattern", {}).get("Regex", ""))
        if name:
            return name
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"  # GPT-2's regex after splitting every digit; llama.cpp's starcoder/smollm family
    raise GGUFError(f"Studio does not know how llama.cpp splits text for this tokenizer (pre-tokenizer {kinds}). "
                    + _CONVERT_HINT)


def _add_tokenizer(writer, tokenizer, tokenizer_json: dict, vocab_size: int) -> None:
    import gguf

    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise GGUFError("Studio writes GGUF only for byte-level BPE tokenizers (GPT-2 style); this one is "
                        f"{model.get('type')}"
                        f"{' with byte fallback (SentencePiece)' * bool(model.get('byte_fallback'))}. "
                        + _CONVERT_HINT)
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    if max(by_id) >= vocab_size:
        raise GGUFError(f"The tokenizer has ids up to {max(by_id)} but the model only {vocab_size} embeddings.")
    tokens, types = [], []
    for i in range(vocab_size):  # embeddings padded past the tokenizer get placeholder tokens, as llama.cpp does
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tokenizer_json.get("pre_tokenizer")))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for token_id, add in ((tokenizer.bos_token_id, writer.add_bos_token_id),
                          (tokenizer.eos_token_id, writer.add_eos_token_id),
                          (tokenizer.unk_token_id, writer.add_unk_token_id),
                          (tokenizer.pad_token_id, writer.add_pad_token_id)):
        if token_id is not None:
            add(token_id)
    probe = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(tokenizer.eos_token_id is not None and probe[-1] == tokenizer.eos_token_id)
    writer.add_add_space_prefix(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's Q/K row order: HF rotates the two halves of each head, ggml rotates adjacent pairs.

    Same as `LlamaModel.permute` in convert_hf_to_gguf.py; transformers undoes it when reading GGUF.
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def _gguf_name(name: str) -> str | None:
    if name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[name]
    match = _LAYER.match(name)
    if match and match.group(2) in _LAYER_NAMES:
        return f"blk.{match.group(1)}.{_LAYER_NAMES[match.group(2)]}.{match.group(3)}"
    if name.endswith("rotary_emb.inv_freq"):
        return None  # recomputed from rope.freq_base
    raise GGUFError(f"The model has a tensor Studio does not know how to write: {name}. " + _CONVERT_HINT)


def _safetensors_files(model_dir: Path) -> list[Path]:
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [model_dir / n for n in names]
    if (model_dir / "model.safetensors").exists():
        return [model_dir / "model.safetensors"]
    raise GGUFError(f"{model_dir} has no model.safetensors; export the merged model first.")


def _tensors(model_dir: Path, config, outtype: str):
    """(gguf name, array, raw qtype or None) for every weight, in llama.cpp's names, layout and types."""
    import gguf
    Q8_0 = gguf.GGMLQuantizationType.Q8_0
    from safetensors import safe_open

    n_head = config.num_attention_heads
    n_kv = config.num_key_value_heads or n_head
    reorder = ARCHITECTURES[config.model_type][1]
    seen = set()
    for path in _safetensors_files(model_dir):
        with safe_open(path, framework="pt") as fh:
            for hf_name in fh.keys():  # noqa: SIM118 - safe_open is not iterable
                name = _gguf_name(hf_name)
                if name is None or (name == "output.weight" and config.tie_word_embeddings):
                    continue  # tied: llama.cpp reuses token_embd as the output head when `output` is absent
                data = fh.get_tensor(hf_name).to(torch.float32).numpy()
                if reorder and ".attn_q." in name:
                    data = permute(data, n_head, n_head)
                elif reorder and ".attn_k." in name:
                    data = permute(data, n_head, n_kv)
                seen.add(name)
                if data.ndim == 1:  # norms and biases: tiny, and precision matters, so f32 as llama.cpp does
                    yield name, data, None
                elif outtype == "q8_0" and data.shape[-1] % gguf.GGML_QUANT_SIZES[Q8_0][0] == 0:
                    yield name, gguf.quants.quantize(data, Q8_0), Q8_0
                else:  # rows not a multiple of Q8_0's 32-value block stay f16, llama.cpp's own fallback
                    yield name, data.astype(np.float16), None
    if not config.tie_word_embeddings and "output.weight" not in seen:
        raise GGUFError("The model has untied embeddings but no lm_head.weight; the folder looks incomplete.")


def _default_system(tokenizer) -> str:
    """The system text a ChatML template inserts when none is given (SmolLM2 has one): training saw it."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    head = "<|im_start|>system\n"
    return text[len(head):text.index("<|im_end|>")] if text.startswith(head) else ""


def write_modelfile(gguf_file: Path, tokenizer, system_prompt: str = "") -> Path:
    """An Ollama Modelfile beside the GGUF (`ollama create NAME -f Modelfile`), with the chat format it was tuned on."""
    gguf_file = Path(gguf_file)
    lines = [f"FROM ./{gguf_file.name}", ""]
    template = tokenizer.chat_template or ""
    if "<|im_start|>" in template:
        lines += [f'TEMPLATE """{_CHATML_TEMPLATE}"""', "", 'PARAMETER stop "<|im_end|>"', ""]
        system_prompt = system_prompt or _default_system(tokenizer)
    # Without a ChatML template, Ollama falls back to matching the chat template stored in the GGUF.
    if system_prompt:
        lines += [f'SYSTEM """{system_prompt.replace(chr(34) * 3, chr(34))}"""', ""]
    path = modelfile_for(gguf_file)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def modelfile_for(gguf_file: Path) -> Path:
    """`Modelfile` beside the GGUF, unless that one belongs to another GGUF; then `<stem>.Modelfile`."""
    path = gguf_file.with_name("Modelfile")
    if path.exists() and path.read_text(encoding="utf-8").splitlines()[:1] != [f"FROM ./{gguf_file.name}"]:
        return gguf_file.with_name(f"{gguf_file.stem}.Modelfile")
    return path


def verify_gguf(gguf_file: Path, model_dir: Path, prompt: str = DEFAULT_PROMPT, outtype: str | None = None) -> dict:
    """Compare next-token logits of the GGUF (read back by transformers) with the HF folder on one chat prompt.

    Returns max_abs_diff, relative_diff (to the largest |logit|), argmax_equal (last position),
    argmax_agreement (share of positions), tokens_equal (the GGUF's tokenizer gives the same ids) and ok.
    `outtype` picks the tolerance; left out, it is read from the file (a few seconds: the reader parses the vocab).
    """
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file, model_dir = Path(gguf_file), Path(model_dir)
    if outtype is None:
        file_type = int(gguf.GGUFReader(gguf_file).fields["general.file_type"].contents())
        outtype = "q8_0" if file_type == gguf.LlamaFileType.MOSTLY_Q8_0 else "f16"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = (tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                          add_generation_prompt=True) if tokenizer.chat_template else prompt)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    gguf_ids = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)(
        text, add_special_tokens=False)["input_ids"]
    source = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    with torch.no_grad():
        expected = source(torch.tensor([ids])).logits[0]
        got = loaded(torch.tensor([ids])).logits[0]
    diff = (expected - got).abs().max().item()
    scale = expected.abs().max().item()
    top, top_got = expected[-1].argmax().item(), got[-1].argmax().item()
    # On a random test model two logits can tie within rounding; that is not a wrong export.
    near_tie = expected[-1, top_got].item() >= expected[-1, top].item() - 2 * diff
    report = {
        "outtype": outtype,
        "prompt_tokens": len(ids),
        "max_abs_diff": round(diff, 6),
        "logit_scale": round(scale, 4),
        "relative_diff": round(diff / scale, 6) if scale else 0.0,
        "argmax_equal": top == top_got,
        "argmax_agreement": round((expected.argmax(-1) == got.argmax(-1)).float().mean().item(), 4),
        "tokens_equal": gguf_ids == ids,
    }
    report["ok"] = (report["tokens_equal"] and report["relative_diff"] < TOLERANCE[outtype]
                    and (report["argmax_equal"] or near_tie))
    return report


def describe(report: dict) -> str:
    """One line for a person: how close the GGUF is to the model it came from."""
    return (f"GGUF check ({report['outtype']}): max logit difference {report['max_abs_diff']:.4g} "
            f"({report['relative_diff']:.2%} of the logit scale), next token "
            f"{'agrees' if report['argmax_equal'] else 'differs'}, tokenizer "
            f"{'matches' if report['tokens_equal'] else 'differs'}.")
