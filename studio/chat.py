"""Replies from the base and the tuned model, from one copy of the base weights.

A LoRA run's tuned model is the base model with its adapter on; the base reply is the same model
with the adapter switched off, so comparing costs no second copy in memory.

On a CPU with llama.cpp installed, the default model's replies are decoded by llama.cpp over the GGUF file it
ships as, the adapter switched per request (studio/kernels/gguf_decode.py): 5x the torch fallback's tokens/s
(bench/README.md, "Chat"). Everywhere else (a GPU, other bases, full fine-tunes, llama.cpp missing) torch
answers, and `engine` says which did.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import torch

from studio import runs
from studio.hardware import generation_threads, on_fresh_thread, torch_threads
from studio.kernels import gguf_decode
from studio.kernels.fast_decode import decoding, use_fast_decoding
from studio.models import build_lock, load_model, load_tokenizer
from studio.recipe import load as load_recipe

_cache: OrderedDict[str, ChatModel] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 2
UPDATE_S = 0.04  # how often a streamed llama.cpp reply is taken up: 25 updates a second reads as smooth


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

    def __init__(self, run_dir: Path | None = None, base: str = "default", weights: Path | None = None,
                 engine: str | None = None):
        """`engine`: "auto" (llama.cpp where it can take the model, else torch) or "torch"; by default the
        STUDIO_CHAT_ENGINE environment variable, else "auto"."""
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
        self.llama, self.adapter_gguf, self.engine = None, None, "torch (chosen)"
        if (engine or os.environ.get("STUDIO_CHAT_ENGINE", "auto")) != "torch":
            self.llama, self.adapter_gguf, self.engine = (
                _llama_cpp(base, weights, method) if not torch.cuda.is_available() else (None, None, "torch (GPU)"))
        print(f"Chat replies from {self.engine}.", file=sys.stderr, flush=True)
        from studio.kernels.complete import stop_ids  # imports transformers, loaded by now

        # Where a reply ends, for both models (a full fine-tune's own config may name one more end token).
        self.stop = stop_ids(self.model, self.tokenizer) | (
            stop_ids(self.tuned_model, self.tokenizer) if self.tuned_model is not None else set())
        self.model = _onto_gpu(self.model).eval()
        self.tuned_model = _onto_gpu(self.tuned_model)
        for module in (self.model, self.tuned_model):
            if module is not None:
                use_fast_decoding(module)  # bf16 copies for single tokens where they pay: see fast_decode

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

        if self.llama is not None:
            ids = self._inputs(prompt, system_prompt)["input_ids"][0].tolist()
            if len(ids) + max_new_tokens <= self.llama.n_ctx:
                yield from self._stream_llama(ids, tuned, max_new_tokens, temperature)
                return
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

    def _stream_llama(self, ids: list[int], tuned: bool, max_new_tokens: int, temperature: float) -> Iterator[str]:
        """The reply decoded by llama.cpp on a thread that ends with it (its OpenMP pool goes with it, as torch's).

        The text is taken up at most every UPDATE_S: each wake-up of this side takes a core from the two threads
        decoding, and one per token cost a quarter of the tokens/s (bench/README.md, "Chat").
        """
        if tuned and not self.has_tuned:
            raise ValueError("No tuned weights loaded.")
        engine, tokens, ready, box = self.llama, [], threading.Condition(), {}

        def run():
            try:
                with engine.lock:
                    engine.set_threads(generation_threads())
                    engine.use(self.adapter_gguf if tuned else None)
                    for token in engine.stream(ids, max_new_tokens, self.stop, temperature):
                        with ready:
                            tokens.append(token)
                            ready.notify()
            except BaseException as exc:  # noqa: BLE001 - surfaced to the caller below
                box["error"] = exc
            with ready:
                box["done"] = True
                ready.notify()

        with self.lock:
            threading.Thread(target=run, daemon=True).start()
            text, seen = "", 0
            while True:
                with ready:
                    if not ready.wait_for(lambda seen=seen: "done" in box or len(tokens) > seen, timeout=120):
                        raise TimeoutError("llama.cpp gave no token for 120 s.")
                    done, seen = "done" in box, len(tokens)
                    new = tokens[:seen]
                if "error" in box:
                    raise box["error"]
                decoded = self.tokenizer.decode(new, skip_special_tokens=True)
                if decoded != text and (done or not decoded.endswith("\ufffd")):  # a split character waits
                    text = decoded
                    yield text
                if done:
                    return
                time.sleep(UPDATE_S)

    def generate_batch(self, prompts: list[str | list[dict]], tuned: bool, max_new_tokens: int = 96,
                       system_prompt: str | None = None, batch_size: int = 32) -> list[str]:
        """Greedy replies for many prompts at once, for evaluation. A prompt is a question, or the messages (a
        system turn of its own included) for one reply."""
        if self.llama is not None:
            if tuned and not self.has_tuned:
                raise ValueError("No tuned weights loaded.")
            ids = [self._inputs(p, system_prompt)["input_ids"][0].tolist() for p in prompts]

            def run():
                engine = _batch_engine(self.adapter_gguf)
                with engine.lock:
                    engine.set_threads(generation_threads())
                    engine.use(self.adapter_gguf if tuned else None)
                    return engine.complete(ids, max_new_tokens, self.stop)

            with self.lock:
                try:
                    replies = on_fresh_thread(run)
                except gguf_decode.TooLong:
                    replies = None
            if replies is not None:
                return [text.strip() for text in self.tokenizer.batch_decode(replies, skip_special_tokens=True)]
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
                    messages = [{"role": "user", "content": p}] if isinstance(p, str) else list(p)
                    if system and messages[0]["role"] != "system":
                        messages.insert(0, {"role": "system", "content": system})
                    texts.append(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                                    tokenize=False))
                gen, _ = complete(model, self.tokenizer, texts, 1, max_new_tokens, stop)
                out += [text.strip() for text in self.tokenizer.batch_decode(gen, skip_special_tokens=True)]
        return out


_engines: dict[Path, gguf_decode.Engine] = {}


def _llama_cpp(base: str, weights: Path | None, method: str) -> tuple[gguf_decode.Engine | None, Path | None, str]:
    """llama.cpp's engine for this model and the adapter's GGUF where it can take them; else None and why not."""
    from studio.gguf_export import GGUFError
    from studio.models import default_gguf, is_default

    if not gguf_decode.available():
        return None, None, "torch (llama.cpp is not installed: `make llama` builds it, a few minutes)"
    if not is_default(base):
        return None, None, "torch (llama.cpp answers for the embedded default model only)"
    if method == "full":
        return None, None, "torch (a full fine-tune has no adapter for llama.cpp to apply)"
    try:
        adapter = _adapter_gguf(Path(weights)) if weights is not None else None
        with _cache_lock:
            gguf_file = default_gguf()
            if gguf_file not in _engines:
                _engines[gguf_file] = gguf_decode.Engine(gguf_file, generation_threads(), n_seq=1)
            engine = _engines[gguf_file]
        if adapter is not None:
            engine.load_adapter(adapter)
    except (GGUFError, ValueError, OSError, RuntimeError, ImportError) as exc:  # ImportError: still installing
        return None, None, f"torch (llama.cpp could not take this model: {exc})"
    return engine, adapter, "llama.cpp"


def _batch_engine(adapter: Path | None) -> gguf_decode.Engine:
    """llama.cpp for many replies at once, on a Q8_0 copy of the default model written once into the models cache.

    Decoding many sequences together is bound by arithmetic, not by reading weights, and llama.cpp's Q4_1 kernels
    do it at half the speed of its Q8_0 ones here (4.2 against 2.4 ms a token in a batch of 16): evaluation, the
    forgetting check and document drafting get the Q8_0 copy, chat the file as it ships. Q8_0 keeps each weight
    to within 1/254 of its block's largest (bench/README.md, "Evaluation").
    """
    from studio.gguf_export import export_gguf
    from studio.models import build_lock, ensure_default_model
    from studio.paths import models_dir

    target = models_dir() / "smollm2-135m-instruct.q8_0.gguf"
    with _cache_lock:
        if target not in _engines:
            if not target.exists():
                with tempfile.TemporaryDirectory(dir=models_dir()) as tmp, build_lock:
                    written = export_gguf(ensure_default_model(log=lambda _: None), Path(tmp) / target.name, "q8_0")
                    os.replace(written, target)  # without the Ollama Modelfile export_gguf writes beside it
            _engines[target] = gguf_decode.Engine(target, generation_threads(), n_seq=32)
        engine = _engines[target]
    if adapter is not None:
        engine.load_adapter(adapter)
    return engine


def _adapter_gguf(weights: Path) -> Path:
    """The adapter as a GGUF LoRA file, written once into the models cache (keyed by the adapter file itself)."""
    from transformers import AutoConfig

    from studio.gguf_lora import write_lora_gguf
    from studio.models import default_model_dir
    from studio.paths import models_dir

    source = weights / "adapter_model.safetensors"
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    out = models_dir() / "lora-gguf" / f"{key}.gguf"
    if not out.exists():
        write_lora_gguf(weights, AutoConfig.from_pretrained(default_model_dir()), out)
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
        _unload_unused_adapters()
    return model


def _unload_unused_adapters() -> None:
    """llama.cpp keeps an adapter until it is freed (~80 MB at r 64): those of runs no cached model answers for go,
    so a day of trying runs does not pile them up. Called under _cache_lock."""
    wanted = {m.adapter_gguf for m in _cache.values() if m.adapter_gguf is not None}
    for engine in _engines.values():
        for adapter in [a for a in engine.adapters if a not in wanted]:
            engine.unload_adapter(adapter)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _unload_unused_adapters()
