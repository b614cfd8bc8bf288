# Uses llama.cpp's C API through llama-cpp-python's ctypes bindings (`llama_cpp.llama_*`): model and context
# parameters, llama_batch filled by hand, llama_decode, llama_get_logits_ith, the llama_memory_seq_* calls and
# llama_set_adapters_lora. Checked against llama-cpp-python 0.3.36 (the Makefile's pin).
"""Chat and evaluation decoded by llama.cpp over the base model's own GGUF, a run's adapter applied per request.

Decoding one token at a time is bound by reading the weights. llama.cpp reads the default model's Q4_1 file
as it ships, with kernels made for it, and does the whole step in C: 3.3x the tokens/s of Studio's torch
path on two cores (bench/README.md, "Chat"). One copy of the base serves every side: a run's LoRA adapter
(written as GGUF by `studio.gguf_lora`) is switched on at scale 1 for the tuned side and off for the base,
and the KV cache is kept only while the adapter stays the same.

Studio keeps the tokenizer: prompts are the HF tokenizer's chat template ids, the same tokens the run
trained on, and replies are decoded by the same tokenizer, so only the forward pass changes hands. Greedy
steps take the argmax of llama.cpp's logits; sampled ones draw in numpy with a seeded generator.

Evaluation decodes many prompts at once, as `studio.kernels.complete` does on torch: the prompts' shared
start runs once and is copied to every sequence, finished replies leave the batch.

`llama-cpp-python` is optional (it builds from source, ~6 min on two cores): without it, or for a model
it cannot take, chat stays on torch, and `ChatModel.engine` says which one answers.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_init_lock = threading.Lock()
_backend_ready = False


def available() -> bool:
    """Whether llama-cpp-python is installed; asked again at every model load (it may be built while the app runs)."""
    importlib.invalidate_caches()
    return importlib.util.find_spec("llama_cpp") is not None


def _lib():
    """The llama_cpp bindings, the backend initialised once and its log kept quiet (it writes to stderr)."""
    global _backend_ready
    import llama_cpp

    with _init_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _quiet(llama_cpp)
            _backend_ready = True
    return llama_cpp


_log_callback = None


def _quiet(lib) -> None:
    global _log_callback

    @lib.llama_log_callback
    def drop(level, text, user_data):  # noqa: ARG001 - the C signature
        return None

    _log_callback = drop  # kept alive: llama.cpp calls it for as long as the process runs
    lib.llama_log_set(_log_callback, ctypes.c_void_p(0))


class TooLong(ValueError):
    """A prompt and its reply do not fit the context: the caller answers on torch instead."""


class Engine:
    """One llama.cpp model and context; every call holds `lock` (a context decodes one batch at a time)."""

    def __init__(self, gguf_file: Path, threads: int, n_ctx: int = 8192, n_seq: int = 16, n_batch: int = 1024):
        lib = _lib()
        self.lib = lib
        self.gguf_file = Path(gguf_file)
        self.lock = threading.RLock()
        mparams = lib.llama_model_default_params()
        self.model = lib.llama_model_load_from_file(str(self.gguf_file).encode(), mparams)
        if not self.model:
            raise ValueError(f"llama.cpp could not load {self.gguf_file.name}.")
        cparams = lib.llama_context_default_params()
        train_ctx = lib.llama_model_n_ctx_train(self.model)
        cparams.n_ctx = min(n_ctx, train_ctx) if train_ctx > 0 else n_ctx
        cparams.n_batch = cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.kv_unified = True  # sequences share one cache: the prompts' shared start is copied, not rerun
        cparams.no_perf = True
        self.ctx = lib.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise ValueError("llama.cpp could not make a context for this model.")
        self.n_ctx, self.n_seq, self.n_batch = lib.llama_n_ctx(self.ctx), n_seq, n_batch
        self.memory = lib.llama_get_memory(self.ctx)
        self.n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self.model))
        self.batch = lib.llama_batch_init(n_batch, 0, n_seq)
        self.adapters: dict[Path, object] = {}
        self.active: Path | None = None
        self.cached: list[int] = []  # what sequence 0 holds, for the next chat turn to reuse

    def set_threads(self, threads: int) -> None:
        self.lib.llama_set_n_threads(self.ctx, threads, threads)

    def load_adapter(self, gguf_lora: Path) -> None:
        gguf_lora = Path(gguf_lora)
        with self.lock:
            if gguf_lora not in self.adapters:
                handle = self.lib.llama_adapter_lora_init(self.model, str(gguf_lora).encode())
                if not handle:
                    raise ValueError(f"llama.cpp could not load the adapter {gguf_lora.name}.")
                self.adapters[gguf_lora] = handle

    def unload_adapter(self, gguf_lora: Path) -> None:
        """Free a loaded adapter (switched off first if it is on)."""
        gguf_lora = Path(gguf_lora)
        with self.lock:
            if gguf_lora in self.adapters:
                if self.active == gguf_lora:
                    self.use(None)
                self.lib.llama_adapter_lora_free(self.adapters.pop(gguf_lora))

    def use(self, adapter: Path | None) -> None:
        """Switch the adapter on (a GGUF LoRA file loaded before) or off; the cache goes with a change."""
        adapter = Path(adapter) if adapter else None
        if adapter == self.active:
            return
        if adapter is None:
            rc = self.lib.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            self.load_adapter(adapter)  # again, where it was freed while no cached model answered for it
            handles = (self.lib.llama_adapter_lora_p_ctypes * 1)(self.adapters[adapter])
            rc = self.lib.llama_set_adapters_lora(self.ctx, handles, 1, (ctypes.c_float * 1)(1.0))
        if rc != 0:
            raise RuntimeError(f"llama.cpp could not switch the adapter (code {rc}).")
        self.active = adapter
        self.clear()

    def clear(self) -> None:
        self.lib.llama_memory_clear(self.memory, True)
        self.cached = []

    def _decode(self, entries: list[tuple[int, int, int, bool]], pick) -> dict[int, int]:
        """Run (token, position, sequence, wants the next token) entries; `pick(logits)` of those that want it.

        The logits are read in place, before the next decode overwrites them: no copy of 49k floats a row.
        """
        out: dict[int, int] = {}
        batch, n_vocab = self.batch, self.n_vocab
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start:start + self.n_batch]
            for i, (token, pos, seq, logits) in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = logits
            batch.n_tokens = len(chunk)
            rc = self.lib.llama_decode(self.ctx, batch)
            if rc != 0:
                self.clear()
                raise RuntimeError(f"llama.cpp could not decode (code {rc}).")
            for i, entry in enumerate(chunk):
                if entry[3]:
                    row = self.lib.llama_get_logits_ith(self.ctx, i)
                    out[start + i] = pick(np.ctypeslib.as_array(row, shape=(n_vocab,)))
        return out

    def stream(self, ids: list[int], max_new_tokens: int, stop: set[int], temperature: float = 0.0,
               top_p: float = 0.95, seed: int | None = None) -> Iterator[int]:
        """New token ids of one reply, one at a time; the prompt's start still cached from the last turn is reused."""
        if len(ids) + max_new_tokens > self.n_ctx:
            raise TooLong(f"{len(ids)} prompt tokens and {max_new_tokens} new ones exceed {self.n_ctx}.")
        rng = np.random.default_rng(seed)

        def pick(logits):
            return _pick(logits, temperature, top_p, rng)

        keep = 0
        for a, b in zip(self.cached, ids[:-1], strict=False):  # the last prompt token always runs: its logits
            if a != b:
                break
            keep += 1
        self.lib.llama_memory_seq_rm(self.memory, 0, keep, -1)
        self.cached = list(ids[:keep])
        todo = [(t, keep + i, 0, i == len(ids) - keep - 1) for i, t in enumerate(ids[keep:])]
        pos = len(ids)
        for _ in range(max_new_tokens):
            token = self._decode(todo, pick)[len(todo) - 1]
            self.cached += [t for t, *_ in todo]
            if token in stop:
                return
            yield token
            todo = [(token, pos, 0, True)]
            pos += 1

    def complete(self, prompts: list[list[int]], max_new_tokens: int, stop: set[int]) -> list[list[int]]:
        """Greedy replies (new token ids) to many prompts, decoded together; their shared start runs once."""
        replies: list[list[int]] = [[] for _ in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        group: list[int] = []
        for i in order:  # groups that fit the context: each sequence needs its prompt and a whole reply
            if len(prompts[i]) + max_new_tokens > self.n_ctx:
                raise TooLong(f"A prompt of {len(prompts[i])} tokens and {max_new_tokens} new ones exceed "
                              f"{self.n_ctx}.")
            need = sum(len(prompts[j]) + max_new_tokens for j in [*group, i])
            if group and (len(group) == self.n_seq or need > self.n_ctx):
                self._complete_group([prompts[j] for j in group], max_new_tokens, stop, [replies[j] for j in group])
                group = []
            group.append(i)
        if group:
            self._complete_group([prompts[j] for j in group], max_new_tokens, stop, [replies[j] for j in group])
        return replies

    def _complete_group(self, prompts: list[list[int]], max_new_tokens: int, stop: set[int],
                        replies: list[list[int]]) -> None:
        self.clear()
        shared = len(os.path.commonprefix(prompts)) if len(prompts) > 1 else 0
        shared = min(shared, min(len(p) for p in prompts) - 1)  # each sequence runs at least its last token
        if shared > 0:
            self._decode([(t, i, 0, False) for i, t in enumerate(prompts[0][:shared])], _argmax)
            for seq in range(1, len(prompts)):
                self.lib.llama_memory_seq_cp(self.memory, 0, seq, 0, shared)
        entries = [(t, shared + i, seq, shared + i == len(ids) - 1)
                   for seq, ids in enumerate(prompts) for i, t in enumerate(ids[shared:])]
        picked = self._decode(entries, _argmax)
        live = {entries[e][2]: token for e, token in picked.items()}  # sequence -> its next token
        pos = {seq: len(ids) for seq, ids in enumerate(prompts)}
        while live:
            step = []
            for seq, token in live.items():
                if token in stop:
                    self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)  # finished: leaves the batch
                    continue
                replies[seq].append(token)
                if len(replies[seq]) < max_new_tokens:
                    step.append((token, pos[seq], seq, True))
                    pos[seq] += 1
            picked = self._decode(step, _argmax) if step else {}
            live = {step[e][2]: token for e, token in picked.items()}
        self.clear()

    def close(self) -> None:
        with self.lock:
            for handle in self.adapters.values():
                self.lib.llama_adapter_lora_free(handle)
            self.adapters.clear()
            if self.ctx:
                self.lib.llama_batch_free(self.batch)
                self.lib.llama_free(self.ctx)
                self.lib.llama_model_free(self.model)
                self.ctx = self.model = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the process frees it all anyway
            pass


def _argmax(logits: np.ndarray) -> int:
    return int(logits.argmax())


def _pick(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """The greedy token, or a draw from the top-p nucleus at `temperature` (as `generate` samples on torch)."""
    if temperature <= 0:
        return int(logits.argmax())
    scaled = (logits - logits.max()) / temperature
    probs = np.exp(scaled)
    probs /= probs.sum()
    order = np.argsort(-probs)
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
    return int(rng.choice(keep, p=probs[keep] / probs[keep].sum()))
