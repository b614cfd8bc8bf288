"""bench/gpu_check.sh in its reduced CPU form: the GPU check's own code (model building, Studio and plain TRL
runs with LoRA and QLoRA, chat and evaluation, the JSON line) runs in CI, so it cannot rot between GPU sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_its_reduced_form_on_the_cpu():
    env = dict(os.environ, PY=sys.executable)
    out = subprocess.run(["bash", "bench/gpu_check.sh", "--cpu-smoke"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    runs = {(r["method"], r["path"]): r for r in result["train"]}
    assert set(runs) == {("lora", "studio"), ("lora", "plain"), ("qlora", "studio"), ("qlora", "plain")}
    assert all(r.get("tokens_per_s", 0) > 0 and r["peak_mb"] > 0 for r in runs.values()), runs
    assert set(result["studio_over_plain"]) == {"tiny_lora", "tiny_qlora"}
    assert result["chat"]["chat_device"] == "cpu" and result["chat"]["chat_tokens_per_s"] > 0
    assert result["chat"]["eval_questions_per_s"] > 0
