"""Live training warnings: the three ways a run goes wrong, spotted from its metrics rows, each with the fix.

A domain expert cannot read a loss curve, but the curve already says what is wrong: it fell to zero while
the held-out loss rose (memorising), it never fell (not learning), or it shot up (diverging). This module
turns those shapes into sentences. It is a pure function of the rows in `metrics.jsonl`, so the training
callback, the UI and the tests all call it the same way.
"""

from __future__ import annotations

import math

MEMORISED_LOSS = 0.05  # mean recent training loss below this: the answers are known by heart
EVAL_RISE = 0.10  # last eval loss this far above its lowest: generalisation is getting worse
MIN_FALL = 0.10  # after a fair share of the run the loss should have fallen at least this much
MIN_STEPS = 20  # ... "a fair share": this many steps, or
MIN_SHARE = 0.30  # ... this share of all steps
DIVERGE = 1.5  # recent loss this many times the starting loss: the updates are too large
HIGH_LR = 1e-3  # a LoRA learning rate this high is already as high as is safe: suggest more epochs instead
WINDOW = 3  # points averaged at each end, so one noisy batch raises no warning


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def training_warnings(metrics: list[dict]) -> list[str]:
    """Plain-language warnings for the run so far (most serious first); an empty list when all looks well."""
    rows = sorted(metrics, key=lambda r: r.get("step", 0))
    raw = [(r.get("step", 0), r["loss"]) for r in rows if isinstance(r.get("loss"), (int, float))]
    evals = [(r.get("step", 0), r["eval_loss"]) for r in rows if isinstance(r.get("eval_loss"), (int, float))]
    warnings = []

    bad = next((step for step, loss in raw + evals if not math.isfinite(loss)), None)
    losses = [loss for _, loss in raw if math.isfinite(loss)]
    if bad is not None:
        warnings.append(f"The loss became NaN or infinite at step {bad}: training diverged. Lower the learning rate "
                        "(for example to a tenth) and start again.")
    elif len(losses) >= 2 * WINDOW:
        start, recent = _mean(losses[:WINDOW]), _mean(losses[-WINDOW:])
        last_step = raw[-1][0]
        total = max((r.get("total") or 0 for r in rows), default=0)
        far_enough = last_step >= MIN_STEPS or (total > 0 and last_step >= MIN_SHARE * total)
        if recent > DIVERGE * start:
            warnings.append(f"The loss is rising sharply ({start:.3f} at the start, {recent:.3f} now): training is "
                            "diverging. Lower the learning rate (for example to a tenth) and start again.")
        elif far_enough and recent > (1 - MIN_FALL) * start:
            peak_lr = max((r["lr"] for r in rows if isinstance(r.get("lr"), (int, float))), default=0.0)
            fix = ("Train for more epochs" if peak_lr >= HIGH_LR else
                   "Raise the learning rate (e.g. 1e-3 for LoRA on small models)")
            warnings.append(f"Loss is not falling ({start:.3f} at the start, {recent:.3f} at step {last_step}): the "
                            f"model is not learning. {fix}, and check that the data's answer column holds the "
                            "answers.")

    if len(losses) >= 2 * WINDOW and not evals and _mean(losses[-WINDOW:]) < MEMORISED_LOSS:
        warnings.append("The training loss is near zero: the model knows its training answers by heart. Check it "
                        "on the same questions asked in other words (the Evaluate tab does, after training). If it "
                        "misses those, train fewer epochs or add more wordings of each question (Question rewrites, "
                        "Question forms).")
    if len(losses) >= WINDOW and len(evals) >= 2:
        best_step, best = min(evals, key=lambda e: e[1])
        last = evals[-1][1]
        if _mean(losses[-WINDOW:]) < MEMORISED_LOSS and math.isfinite(last) and last > best * (1 + EVAL_RISE):
            warnings.append(f"The model is memorising the training answers: training loss is near zero while the "
                            f"held-out loss rose from {best:.3f} (step {best_step}) to {last:.3f}. Train fewer "
                            "epochs or with a lower learning rate; keep the checkpoint with the lowest eval loss "
                            f"(around step {best_step}).")
    return warnings
