from pathlib import Path

import pytest

from studio import recipe as R

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads_validates_and_documents_itself(path):
    text = path.read_text()
    assert text.startswith("#"), "each recipe opens with a comment: what, hardware, command"
    assert "python -m studio train" in text or "accelerate launch" in text
    recipe = R.load(path)
    assert R.validate(recipe) == []
    assert R.loads(recipe.to_yaml()) == recipe


def test_round_trip_and_help_on_every_field():
    from dataclasses import fields

    recipe = R.Recipe()
    assert R.loads(recipe.to_yaml()) == recipe
    for name, cls in R.SECTIONS.items():
        for f in fields(cls):
            meta = R.field_help(name, f.name)
            assert meta["help"] and meta["label"], f"{name}.{f.name} needs help text and a label"


def test_validation_reports_every_problem_at_once_with_field_and_fix():
    recipe = R.loads("method: {r: 0, alpha: -1}\ntraining: {learning_rate: 0, epochs: 0, batch_size: 0}")
    problems = R.validate(recipe)
    joined = "\n".join(problems)
    for name in ("method.r", "method.alpha", "training.learning_rate", "training.epochs", "training.batch_size"):
        assert name in joined
    assert len(problems) >= 5
    assert "Try" in joined


def test_unknown_keys_and_wrong_types_are_collected_with_suggestions():
    with pytest.raises(R.RecipeError) as err:
        R.loads("trainig: {}\ntraining: {learnig_rate: 1, epochs: many}\nmethod: {r: 'x'}")
    text = str(err.value)
    assert "Did you mean 'training'" in text
    assert "Did you mean 'learning_rate'" in text
    assert "training.epochs" in text and "method.r" in text
    assert len(err.value.problems) == 4


def test_bad_yaml_names_the_line():
    with pytest.raises(R.RecipeError, match="line 2"):
        R.loads("training:\n  epochs: : 3\nmethod: {}\n")
    with pytest.raises(R.RecipeError, match="mapping"):
        R.loads("- just\n- a list\n")


def test_yaml_is_data_not_code():
    with pytest.raises(R.RecipeError):
        R.loads("!!python/object/apply:os.system ['echo pwned']")


def test_overrides():
    recipe = R.apply_overrides(R.Recipe(), ["training.epochs=5", "method.target_modules=q_proj,v_proj"])
    assert recipe.training.epochs == 5.0
    assert recipe.method.target_modules == "q_proj,v_proj"
    with pytest.raises(R.RecipeError, match="section.setting=value"):
        R.apply_overrides(R.Recipe(), ["epochs=5"])


def test_defaults_scale_with_data_and_keep_explicit_settings(tmp_path):
    from studio.defaults import size_to_data, suggest

    def passes(n):  # times each fact is trained on, in any wording
        s = suggest(n)
        return s["training"]["epochs"] * (1 + s["data"]["question_forms"] + s["data"]["paraphrases"])

    assert passes(30) > passes(300) > passes(5000), "few facts are taught more often"
    data = tmp_path / "d.csv"
    data.write_text("question,answer\n" + "".join(f"q{i}?,a{i}.\n" for i in range(30)))
    recipe = R.apply_overrides(R.Recipe(), ["training.epochs=2"])
    recipe = size_to_data(recipe, data, explicit=["training.epochs=2"])
    assert recipe.training.epochs == 2
    assert recipe.training.learning_rate == suggest(27)["training"]["learning_rate"]
    assert recipe.data.replay == 30 and recipe.data.paraphrases == 2, "a small fact set gets rewrites and replay"
    assert suggest(200)["data"]["replay"] == 20
    assert recipe.data.question_forms == 4, "and rule-based question forms"
    assert suggest(5000)["data"] == {"paraphrases": 0, "question_forms": 0, "replay": 0}, "large sets vary wording"
    assert suggest(30, "head")["data"]["replay"] == 0
    small, large = suggest(30)["method"], suggest(5000)["method"]
    assert (small["r"], small["alpha"]) == (64, 128), "close numbers need the capacity (bench/README.md)"
    assert small["alpha"] / small["r"] == large["alpha"] / large["r"], "the same scale at any rank"
