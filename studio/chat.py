"""Replies from the base and the tuned model, from one copy of the base weights.

A LoRA run's tuned model is the base model with its adapter on; the base reply is the same model
with the adapter switched off (`disable_adapter()`), so comparing costs no second copy in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import torch

from studio import runs
from studio.hardware import generation_threads, on_fresh_thread, torch_threads
from studio.kernels.fast_decode import decoding, use_four_bit_decoding
from studio.models import build_lock, load_model, load_tokenizer
from studio.recipe import load as load_recipe

_cache: OrderedDict[str, ChatModel] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 2


def _onto_gpu(model):
    """The model on the GPU where there is one (load_model leaves a LoRA base on the CPU, for training to
    place), else as it is. A model that does not fit beside a running job's stays on the CPU: slower
    replies rather than a failed chat."""
    if model is None or not torch.cuda.is_available() or next(model.parameters()).device.type != "cpu":
        return model
    try:
        return model.to("cuda")
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return model.to("cpu")


class ChatModel:
    """A base model plus (optionally) a run's weights; one generation at a time per model."""

    def __init__(self, run_dir: Path | None = None, base: str = "default", weights: Path | None = None):
        self.run_dir = Path(run_dir) if run_dir else None
        self.system_prompt = ""
        if self.run_dir is not None:
            recipe = load_recipe(self.run_dir / "recipe.yaml")
            base = recipe.model.base
            self.system_prompt = recipe.data.system_prompt
            weights = weights or runs.final_weights(self.run_dir) or runs.last_checkpoint(self.run_dir)
            if weights is None:
                raise FileNotFoundError("This run has no trained weights yet. Wait for it to finish or resume it.")
        self.lock = threading.Lock()
        self.tuned_model = None
        method = "lora"
        # A QLoRA run's base goes back on the GPU in 4-bit, as it trained: in bf16 a 7B base would not fit
        # beside the next run on the GPU it was chosen for.
        qlora = self.run_dir is not None and recipe.method.name == "qlora"
        load_as = "qlora" if qlora and torch.cuda.is_available() else "lora"
        if weights is not None and (Path(weights) / "adapter_config.json").exists():
            from peft import PeftModel

            self.tokenizer = load_tokenizer(base, log=lambda _: None)
            base_model = load_model(base, load_as, log=lambda _: None)  # takes the lock itself, after any conversion
            with build_lock:  # the adapter's layers too (see models.build_lock)
                self.model = PeftModel.from_pretrained(base_model, str(weights))
        elif weights is not None:
            method = "full"
            self.tokenizer = load_tokenizer(base, log=lambda _: None)
            self.model = load_model(base, "lora", log=lambda _: None)
            self.tuned_model = load_model(str(weights), "lora", log=lambda _: None).eval()
        else:
            self.tokenizer = load_tokenizer(base, log=lambda _: None)
            self.model = load_model(base, "lora", log=lambda _: None)
        self.method = method
        self.has_tuned = weights is not None
        from studio.kernels.complete import stop_ids  # imports transformers, loaded by now

        # Where a reply ends, for both models (a full fine-tune's own config may name one more end token).
        self.stop = stop_ids(self.model, self.tokenizer) | (
            stop_ids(self.tuned_model, self.tokenizer) if self.tuned_model is not None else set())
        self.model = _onto_gpu(self.model).eval()
        self.tuned_model = _onto_gpu(self.tuned_model)
        for module in (self.model, self.tuned_model):
            if module is not None:
                use_four_bit_decoding(module)  # 4-bit kernels, or bf16 copies on CPUs without bf16: see fast_decode

    def _pick(self, tuned: bool):
        """The module to generate with and a context that switches the adapter as asked."""
        import contextlib

        if tuned and not self.has_tuned:
            raise ValueError("No tuned weights loaded.")
        if self.tuned_model is not None:
            return (self.tuned_model if tuned else self.model), contextlib.nullcontext()
        if hasattr(self.model, "disable_adapter") and not tuned:
            return self.model, self.model.disable_adapter()
        return self.model, contextlib.nullcontext()

    def _inputs(self, prompt: str | list[dict], system_prompt: str | None):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        system = self.system_prompt if system_prompt is None else system_prompt
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                  return_dict=True)

    def _gen_kwargs(self, max_new_tokens: int, temperature: float) -> dict:
        kwargs = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id,
                  "do_sample": temperature > 0, "eos_token_id": sorted(self.stop)}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=0.95)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def reply(self, prompt: str | list[dict], tuned: bool = True, max_new_tokens: int = 128,
              temperature: float = 0.0, system_prompt: str | None = None) -> str:
        text = ""
        for partial in self.stream(prompt, tuned, max_new_tokens, temperature, system_prompt):
            text = partial
        return text

    def stream(self, prompt: str | list[dict], tuned: bool = True, max_new_tokens: int = 128,
               temperature: float = 0.0, system_prompt: str | None = None) -> Iterator[str]:
        """Yield the reply so far after each new piece, for a streaming UI."""
        from transformers import TextIteratorStreamer

        model, switch = self._pick(tuned)
        inputs = self._inputs(prompt, system_prompt).to(model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
        errors: list[BaseException] = []

        def run():  # on a thread that ends with the reply: see hardware.on_fresh_thread
            try:
                with torch_threads(generation_threads()), torch.inference_mode(), switch, decoding():
                    model.generate(**inputs, streamer=streamer, **self._gen_kwargs(max_new_tokens, temperature))
            except BaseException as exc:  # noqa: BLE001 - surfaced to the caller below
                errors.append(exc)
                streamer.end()

        with self.lock:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            text = ""
            for piece in streamer:
                text += piece
                yield text
            worker.join()
        if errors:
            raise errors[0]

    def generate_batch(self, prompts: list[str], tuned: bool, max_new_tokens: int = 96,
                       system_prompt: str | None = None, batch_size: int = 32) -> list[str]:
        """Greedy replies for many prompts at once, for evaluation."""
        with self.lock:
            return on_fresh_thread(lambda: self._generate_batch(prompts, tuned, max_new_tokens, system_prompt,
                                                                 batch_size))

    def _generate_batch(self, prompts, tuned, max_new_tokens, system_prompt, batch_size) -> list[str]:
        """Through drafting's own completion loop (studio.kernels.complete) rather than `generate`: the chat
        template's shared start (system prompt, user header) runs once a batch, finished replies leave
        the batch, and the cache grows in place. Same greedy replies, 2-4x sooner (bench/README.md)."""
        from studio.kernels.complete import complete, generating  # imports transformers: on first use

        model, switch = self._pick(tuned)
        system = self.system_prompt if system_prompt is None else system_prompt
        stop = self.stop
        out: list[str] = []
        with torch_threads(generation_threads()), generating(model, self.tokenizer), switch:
            for i in range(0, len(prompts), batch_size):
                texts = []
                for p in prompts[i:i + batch_size]:
                    messages = [{"role": "user", "content": p}]
                    if system:
                        messages.insert(0, {"role": "system", "content": system})
                    texts.append(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                                    tokenize=False))
                gen, _ = complete(model, self.tokenizer, texts, 1, max_new_tokens, stop)
                out += [text.strip() for text in self.tokenizer.batch_decode(gen, skip_special_tokens=True)]
        return out


def get_chat_model(run_dir: Path | None = None, base: str = "default", weights: Path | None = None) -> ChatModel:
    """A cached ChatModel: loading costs seconds, switching between two recent runs costs nothing."""
    key = f"{run_dir}|{base}|{weights}"
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = ChatModel(run_dir, base, weights)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
