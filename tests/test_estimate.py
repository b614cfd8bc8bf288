"""The Model tab's live estimates: exact parameter counts without loading weights, and memory/time
figures that follow the recipe the way training does."""

import pytest

from studio import estimate as E
from studio.recipe import Recipe, apply_overrides


def test_trainable_count_matches_the_real_model(tiny_model_dir):
    from studio.models import apply_method, count_parameters, load_model

    recipe = apply_overrides(Recipe(), [f"model.base={tiny_model_dir}", "method.r=4"])
    est = E.estimate(recipe)
    real = count_parameters(apply_method(load_model(str(tiny_model_dir)), recipe.method))
    assert (est.trainable, est.total) == real


def test_time_and_memory_follow_the_recipe(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(E, "matmul_flops_per_second", lambda: 1e11)
    base = [f"model.base={tiny_model_dir}", "training.precision=bf16"]
    lengths = [60] * 40
    one = E.estimate(apply_overrides(Recipe(), [*base, "training.epochs=1"]), lengths)
    two = E.estimate(apply_overrides(Recipe(), [*base, "training.epochs=2"]), lengths)
    assert two.seconds == pytest.approx(2 * one.seconds)
    rewrites = E.estimate(apply_overrides(Recipe(), [*base, "training.epochs=1", "data.paraphrases=2"]), lengths)
    assert rewrites.seconds == pytest.approx(2.5 * one.seconds)
    big = E.estimate(apply_overrides(Recipe(), [*base, "training.batch_size=32"]), [200] * 40)
    assert big.memory_bytes > one.memory_bytes
    full = E.estimate(apply_overrides(Recipe(), [*base, "method.name=full"]), lengths)
    assert full.trainable == full.total and full.memory_bytes > one.memory_bytes


def test_drafting_time_is_estimated_apart_from_training(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(E, "matmul_flops_per_second", lambda: E.DRAFT_REFERENCE[0])
    base = [f"model.base={tiny_model_dir}", "training.precision=bf16", "training.epochs=1"]
    plain = E.estimate(apply_overrides(Recipe(), base), [60] * 40)
    assert plain.prep_seconds is None
    drafted = E.estimate(apply_overrides(Recipe(), [*base, "data.paraphrases=4", "data.replay=20"]), [60] * 40)
    work = 40 * 5 * E.DRAFT_SECONDS_PER_SAMPLE + 20 * E.REPLAY_SECONDS_PER_ANSWER
    assert drafted.prep_seconds == pytest.approx(work * drafted.total / E.DRAFT_REFERENCE[1])
