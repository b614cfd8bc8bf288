"""Data-parallel training: `accelerate launch --multi_gpu --num_processes 2 -m studio train ...` on the tiny model.

On a machine without GPUs that command starts two CPU processes joined by gloo (accelerate's MULTI_CPU);
`accelerate launch --cpu --num_processes 2` starts only one (several CPU processes need mpirun there), and the
CLI says so.

Two CPU processes (gloo) train one run: process 0 alone writes the run folder, the status and the metrics, the
other writes nothing; the loss curve follows a one-process run of the same effective batch; Stop reaches both
processes at the same step and Resume continues the run. Each launch starts two Python processes that import
torch (~10 s each on 2 cores), so the checks share as few launches as they can.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio import runs
from studio.recipe import check, loads
from studio.train import train

RECIPE = """
model: {{base: {model}}}
data: {{max_length: 64, eval_size: 0, paraphrases: 0, question_forms: 0, replay: 0}}
method: {{name: lora, r: 4, alpha: 8}}
training: {{epochs: 1, max_steps: {steps}, batch_size: {batch}, learning_rate: 0.01, precision: fp32,
           logging_steps: 1, save_steps: {save_steps}, seed: 7}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(recipe: Path, data: Path, out: Path, *extra: str, wait: bool = True):
    """`accelerate launch` of the CLI's train command on two CPU processes, as the README gives it."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
           "--main_process_port", str(_free_port()), "-m", "studio", "train", str(recipe), "--data", str(data),
           "--out", str(out), *extra]
    env = dict(os.environ, STUDIO_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not wait:
        return proc
    output, _ = proc.communicate(timeout=400)
    return proc.returncode, output


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp-data") / "pairs.csv"
    rows = [(f"What is the code word for item {i}?", f"The code word for item {i} is zorblax{i}.") for i in range(16)]
    path.write_text("question,answer\n" + "".join(f"{q},{a}\n" for q, a in rows), encoding="utf-8")
    return path


def test_two_processes_write_one_run_that_learns_like_one_process(tiny_model_dir, data_file, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(model=tiny_model_dir, steps=6, batch=2, save_steps=50), encoding="utf-8")
    code, output = launch(recipe, data_file, tmp_path / "ddp")
    run_dir = tmp_path / "ddp"
    status = runs.read_status(run_dir)
    assert code == 0 and status.get("state") == "done", (status, output[-3000:])
    assert status["pid"] != os.getpid()
    metrics = runs.read_metrics(run_dir)
    assert [m["step"] for m in metrics if "loss" in m] == list(range(1, 7)), "one metrics line per step, not two"
    log = (run_dir / "train.log").read_text()
    assert log.count("Loading ") == 1, "process 1 writes no log lines"
    assert not list(run_dir.glob("error*.log")) and (run_dir / "adapter" / "adapter_model.safetensors").exists()
    assert "done:" in output and output.count("done:") == 1, "process 0 alone reports"
    tokens = [m["tokens"] for m in metrics if "loss" in m]

    # One process with the same effective batch (2 processes x 2): the same examples per step, another order.
    one = train(check(loads(RECIPE.format(model=tiny_model_dir, steps=6, batch=4, save_steps=50))), data_file,
                tmp_path / "one", log=lambda _: None)
    single = [m["loss"] for m in runs.read_metrics(one) if "loss" in m]
    assert tokens[-1] == [m["tokens"] for m in runs.read_metrics(one) if "loss" in m][-1], "both shares counted"
    ddp = [m["loss"] for m in metrics if "loss" in m]
    assert ddp[-1] < ddp[0] and single[-1] < single[0]
    # The same curve up to how the mean is taken: each process averages its own tokens, one process all of them.
    assert ddp == pytest.approx(single, rel=2e-3), (ddp, single)


def test_stop_reaches_both_processes_and_resume_finishes_the_run(tiny_model_dir, data_file, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(model=tiny_model_dir, steps=400, batch=2, save_steps=1000), encoding="utf-8")
    run_dir = tmp_path / "ddp"
    proc = launch(recipe, data_file, run_dir, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and not any("loss" in m for m in runs.read_metrics(run_dir)):
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    (run_dir / "STOP").touch()
    output, _ = proc.communicate(timeout=300)
    status = runs.read_status(run_dir)
    assert proc.returncode == 0 and status["state"] == "stopped", (status, output[-3000:])
    assert runs.last_checkpoint(run_dir) is not None and not (run_dir / "STOP").exists()
    stopped_at = status["step"]

    # Resume continues from the checkpoint the stop wrote, on both processes, to the end.
    text = RECIPE.format(model=tiny_model_dir, steps=stopped_at + 3, batch=2, save_steps=1000)
    (run_dir / "recipe.yaml").write_text(text.replace("max_length", f"path: data/{data_file.name}, max_length"),
                                         encoding="utf-8")
    code, output = launch(recipe, data_file, run_dir, "--resume")
    status = runs.read_status(run_dir)
    assert code == 0 and status["state"] == "done", (status, output[-3000:])
    steps = [m["step"] for m in runs.read_metrics(run_dir) if "loss" in m]
    assert steps == list(range(1, stopped_at + 4)), steps


def test_the_shipped_accelerate_configs_parse():
    """recipes/accelerate/*.yaml are read by accelerate's own config loader, as `--config_file` reads them."""
    from accelerate.commands.config.config_args import load_config_from_file

    paths = sorted((Path(__file__).resolve().parent.parent / "recipes" / "accelerate").glob("*.yaml"))
    assert {p.name for p in paths} >= {"ddp.yaml", "fsdp.yaml", "cpu.yaml"}
    for path in paths:
        config = load_config_from_file(str(path))
        assert config.num_processes >= 2 and config.distributed_type, path.name


def test_accelerate_cpu_flag_is_told_it_runs_one_process(tiny_model_dir, data_file, tmp_path, monkeypatch, capsys):
    """`accelerate launch --cpu --num_processes 2` silently runs one process: the CLI says so and how to get two."""
    from studio.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(model=tiny_model_dir, steps=1, batch=2, save_steps=50), encoding="utf-8")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    assert main(["train", str(recipe), "--data", str(data_file), "--out", str(tmp_path / "run")]) == 0
    assert "--multi_gpu --num_processes N" in capsys.readouterr().err
