"""What this machine offers (CUDA, CPU bf16 and AMX instructions), how many torch threads each job uses, and a
process's place in a data-parallel run.

torch is imported inside the functions that need it: the CPU checks and thread counts are cheap and
are asked for before any model loads, and the entry points set OMP_NUM_THREADS before torch starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_trainings = 0
_trainings_lock = threading.Lock()


def on_fresh_thread(fn: Callable[[], Any]) -> Any:
    """fn() on a thread that ends with it: its result, or its exception raised here.

    OpenMP keeps a pool of worker threads for every thread that ever ran a parallel torch op, for as
    long as that thread lives. While more such threads exist than cores, libgomp stops spinning and
    every op pays a futex wake-up: next to one idle pool, training runs 37% slower and chat decoding
    twice as slow (bench/README.md). So heavy torch work runs on threads that end with it, and
    the entry points (app.py, `python -m studio`) start every other thread on one torch thread.
    """
    box: dict[str, Any] = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="studio-compute", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


class torch_threads:
    """This thread computes on `n` torch threads, then goes back to the count it had.

    torch's thread count is per thread (OpenMP), but a thread that first runs torch copies the count
    last set anywhere; without the reset a web handler could start an OpenMP pool of its own.
    """

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


def cpu_threads() -> int:
    """Threads for one torch job: STUDIO_THREADS, else every core this process may use, shared out among the
    processes of a data-parallel run on this machine (two processes spinning on every core each run slower)."""
    env = os.environ.get("STUDIO_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    local_processes = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, len(os.sched_getaffinity(0)) // max(1, int(local_processes) if local_processes.isdigit() else 1))


def process_rank() -> tuple[int, int]:
    """(rank, number of processes) of a data-parallel run under `accelerate launch` or torchrun; (0, 1) alone.

    Read from the launcher's environment, so a run knows its place before torch or accelerate start.
    """
    rank, world = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
    return (int(rank) if rank.isdigit() else 0), (int(world) if world.isdigit() else 1)


class MainProcessEnded(Exception):
    """Process 0 of a data-parallel run ended it inside a `main_process_first` block (stopped or failed there)."""


@contextmanager
def main_process_first():
    """Process 0 runs the block first (it writes the run folder and drafts), the others after it, reading what it
    wrote. Process 0 tells the others whether its block finished: where it raised (a stop while drafting, bad
    data), they raise MainProcessEnded at once instead of redoing its work or waiting for a step that never comes.
    """
    if process_rank()[1] == 1:
        yield
        return
    if process_rank()[0] != 0:
        if not from_main_process(None):
            raise MainProcessEnded
        yield
        return
    finished = False
    try:
        yield
        finished = True
    finally:
        from_main_process(finished)


def from_main_process(value):
    """Process 0's `value` in every process of a data-parallel run (e.g. the new run folder's name)."""
    if process_rank()[1] == 1:
        return value
    from accelerate.utils import broadcast_object_list

    _process_group()
    return broadcast_object_list([value], from_process=0)[0]


def _process_group():
    """accelerate's state for this process, joined to the launcher's process group: NCCL on GPUs, gloo on CPUs.
    Without `cpu=True` on a machine without GPUs accelerate would see one process, and every collective would
    return at once instead of waiting; the Trainer joins the same group later with the same setting."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


class training_threads(torch_threads):
    """Context for a training job: its thread gets every core, and chat learns that a job is running.

    torch's thread count is per calling thread (OpenMP), and two jobs each spinning on every core of a
    2-core machine run many times slower than either alone; so while training runs, chat generates
    on one thread (see `generation_threads`).
    """

    def __init__(self):
        super().__init__(cpu_threads())

    def __enter__(self):
        global _trainings
        with _trainings_lock:
            _trainings += 1
        return super().__enter__()

    def __exit__(self, *exc):
        global _trainings
        with _trainings_lock:
            _trainings -= 1
        super().__exit__(*exc)


def generation_threads() -> int:
    """Threads for a chat or evaluation generation: one while a training job runs in this process."""
    return 1 if _trainings > 0 else cpu_threads()


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def bf16_supported() -> bool:
    """bf16 autocast pays on GPUs with bf16 and on CPUs with AVX512-BF16 or AMX; elsewhere it is slower."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: without either, bf16 kernels on the CPU are emulated and slower than fp32."""
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_has_amx() -> bool:
    """AMX tiles: bf16 training on them runs at a different share of the fp32 peak than on AVX-512 alone."""
    return "amx_bf16" in _cpu_flags()
