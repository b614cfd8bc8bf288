"""Model & method tab: the recipe as a form, with what it will cost shown before anything starts.

The form is generated from the recipe's dataclass fields (label, tooltip and choices from
`field_help`), in the order of `MAIN` and `ADVANCED`; `recipe_from_values` turns the form back into a
`Recipe`, so the Train tab and the downloadable YAML read exactly what is on screen.

`PREFERENCE` (objective, beta, start-from run) sits in its own row: loading a preference file on the Data tab
switches the objective to DPO (`size_to`); beta and the start-from run show only for DPO and ORPO.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path

import gradio as gr

from studio import service
from studio.data import split_examples
from studio.defaults import size_to_data
from studio.estimate import estimate, human_bytes, human_seconds
from studio.paths import DEFAULT_RECIPE, RECIPES_DIR, downloads_dir
from studio.recipe import SECTIONS, Recipe, RecipeError, field_help, from_dict, load, loads, validate
from studio.runs import TrainingFailed
from studio.service import default_recipe, shared_problems
from studio.ui import md_escape, warm_imports
from studio.ui.data_tab import example_lengths, is_preference, prefix_length

MAIN = [("model", "base"), ("method", "name"), ("method", "r"), ("method", "alpha"), ("method", "dropout"),
        ("method", "target_modules"), ("training", "learning_rate"), ("training", "epochs"),
        ("training", "batch_size"), ("data", "max_length"), ("data", "system_prompt"), ("data", "paraphrases"),
        ("data", "question_forms"), ("data", "replay")]
PREFERENCE = [("method", "objective"), ("method", "beta"), ("method", "init_adapter")]
# The simple view: the few choices a domain expert makes. The rest of MAIN, and ADVANCED, sit under "Advanced".
SIMPLE = [("model", "base"), ("method", "name"), ("training", "epochs"), ("data", "system_prompt")]
# Choices in plain words, each saying what it costs; the recipe keeps the short names.
CHOICE_WORDS = {
    ("method", "name"): {"lora": "LoRA: a small add-on to the model. Fast, little memory (recommended)",
                         "qlora": "QLoRA: the same add-on on a 4-bit copy of the model. Least memory, slower",
                         "full": "Full: changes every weight. Most memory, slowest",
                         "head": "Output layer only: fastest, learns least"},
    ("method", "objective"): {"sft": "Learn the answers of a Q&A file",
                              "dpo": "DPO: prefer the chosen answer of a preference file",
                              "orpo": "ORPO: learn the chosen answers and prefer them"},
}
ADVANCED = [("data", "eval_size"), ("data", "rewrite_endpoint"), ("data", "rewrite_model"),
            ("model", "trust_remote_code")] + [
    ("training", f.name) for f in fields(SECTIONS["training"])
    if ("training", f.name) not in MAIN]
FIELDS = MAIN + PREFERENCE + ADVANCED
DPO_RECIPE = "smollm2_135m_dpo_cpu.yaml"  # its training settings (gentler rate, fewer epochs) suit preference data


# ---- plain functions -------------------------------------------------------------------------------------------


def _type(section: str, name: str) -> str:
    return next(f.type for f in fields(SECTIONS[section]) if f.name == name)


def adapter_choices(current: str = "") -> list[tuple[str, str]]:
    """Start-from runs for DPO/ORPO: none (a fresh adapter on the base model) or a finished SFT LoRA run."""
    choices = [("(none: a fresh adapter on the base model)", "")] + [(r, r) for r in service.sft_adapter_runs()]
    if current and current not in [value for _, value in choices]:
        choices.append((current, current))  # from a loaded recipe; the checks below say if it cannot be used
    return choices


def make_component(section: str, name: str, value):
    """One form control for `section.name`, labelled and explained by the field's own help text."""
    meta = field_help(section, name)
    kind = _type(section, name)
    common = {"label": meta.get("label") or name, "info": meta.get("help"), "value": value}
    if name == "init_adapter":
        return gr.Dropdown(choices=adapter_choices(value), allow_custom_value=True, **common)
    if meta.get("choices"):
        words = CHOICE_WORDS.get((section, name), {})
        return gr.Radio(choices=[(words.get(c, c), c) for c in meta["choices"]], **common)
    if kind == "bool":
        return gr.Checkbox(**common)
    if kind == "int":
        return gr.Number(precision=0, **common)
    if kind == "float":
        return gr.Number(**common)
    if kind == "float | None":
        return gr.Textbox(**common | {"value": "" if value is None else str(value)}, placeholder="automatic")
    if name == "system_prompt":
        return gr.Textbox(lines=2, **common)
    return gr.Textbox(**common)


def values_from_recipe(recipe: Recipe) -> list:
    values = []
    for section, name in FIELDS:
        value = getattr(getattr(recipe, section), name)
        values.append(("" if value is None else str(value)) if _type(section, name) == "float | None" else value)
    return values


def recipe_from_values(values: list | tuple, data_state: dict | None = None) -> tuple[Recipe | None, list[str]]:
    """The recipe on screen and every problem with it (type errors and out-of-range values together)."""
    raw: dict = {section: {} for section in SECTIONS}
    for (section, name), value in zip(FIELDS, values, strict=True):
        if _type(section, name) == "float | None" and isinstance(value, str):
            value = value.strip() or None
        if isinstance(value, float) and _type(section, name) == "int" and value.is_integer():
            value = int(value)
        raw[section][name] = value
    if data_state:
        raw["data"]["path"] = data_state.get("name", "")
        raw["data"]["columns"] = {k: v for k, v in (data_state.get("columns") or {}).items()}
    try:
        recipe = from_dict(raw)
    except RecipeError as exc:
        return None, exc.problems
    return recipe, validate(recipe) + shared_problems(recipe) + data_problems(recipe, data_state)


def data_problems(recipe: Recipe, data_state: dict | None) -> list[str]:
    """The objective against the loaded data's kind, and the start-from run, checked before anyone presses Start."""
    problems = []
    objective, init = recipe.method.objective, recipe.method.init_adapter.strip()
    loaded = bool(data_state and data_state.get("examples"))
    if loaded and is_preference(data_state) and objective == "sft":
        problems.append("method.objective: the loaded data is a preference file (prompt, chosen, rejected); pick dpo "
                        "or orpo.")
    elif loaded and not is_preference(data_state) and objective != "sft":
        problems.append(f"method.objective: {objective} learns from a preference file (prompt, chosen, rejected), but "
                        "the loaded data is Q&A; pick sft, or load a preference file.")
    if init and objective != "sft" and not shared_problems(recipe):
        from studio.preference import find_init_adapter

        try:
            find_init_adapter(init, recipe.model.base)
        except TrainingFailed as exc:
            problems.append(str(exc))
    return problems


def cost_markdown(recipe: Recipe, data_state: dict | None) -> str:
    """Trainable parameters, peak memory and time for this recipe on this data and machine."""

    warm_imports()
    lengths, prefix = None, 0
    if data_state and data_state.get("examples"):
        try:
            lengths = example_lengths(data_state, recipe.model.base, recipe.data.system_prompt)
            prefix = prefix_length(recipe.model.base, recipe.data.system_prompt)
        except Exception:  # noqa: BLE001 - no tokenizer (e.g. offline hub id): the estimate says so below
            lengths = None
    if lengths:

        # The held-out part does not train: keep the lengths of the rows the run will train on.
        train_rows, _ = split_examples(list(range(len(lengths))), recipe.data.eval_size, recipe.training.seed)
        lengths = [lengths[i] for i in train_rows]
    est = estimate(recipe, lengths, prefix)
    if est.trainable is None:
        return f"⚠️ {md_escape(est.note)}"
    time_line = (f"~{human_seconds(est.seconds)} on this machine" if est.seconds is not None
                 else "load data on the Data tab to estimate")
    if est.seconds is not None and est.prep_seconds and est.prep_seconds >= 1:
        time_line += f", after ~{human_seconds(est.prep_seconds)} drafting extra examples"
    return (f"- Trainable parameters: **{est.trainable:,}** of {est.total:,} ({est.trainable_pct:.2f}%)\n"
            f"- Peak memory: **~{human_bytes(est.memory_bytes)}**\n"
            f"- Training time: **{time_line}**\n\n"
            "<small>Rough estimates; the Train tab shows the real figures.</small>")


_KINDS = {"int": "a whole number", "float": "a number", "float | None": "a number, or nothing for automatic",
          "bool": "ticked or not", "str": "text"}


def plain_problem(problem: str) -> tuple[tuple[str, str] | None, str]:
    """(field, message): "training.epochs: expected float, got None." becomes (('training', 'epochs'), "Epochs: type
    a number here."), so the message names the field as the form labels it and says how to fix it."""
    key, _, rest = problem.partition(": ")
    section, _, name = key.partition(".")
    if (section, name) not in FIELDS:
        return None, problem
    label = field_help(section, name).get("label") or name
    if rest.startswith("expected "):
        rest = f"type {_KINDS.get(_type(section, name), 'a value')} here."
    return (section, name), f"{label}: {rest}"


def field_labels(problems: list[str]) -> list:
    """Each field's label, with its problem in it ("⚠ Epochs: type a number here.") where it has one: the message
    stands next to the field, not only at the foot of the page."""
    flagged = {}
    for problem in problems:
        field, message = plain_problem(problem)
        if field is not None:
            flagged.setdefault(field, message)
    return [gr.update(label=f"⚠ {flagged[f]}" if f in flagged else field_help(*f).get("label") or f[1])
            for f in FIELDS]


def problems_markdown(recipe: Recipe | None, problems: list[str]) -> str:
    lines = [f"- ❌ {md_escape(plain_problem(p)[1])}" for p in problems]
    if recipe is not None and recipe.method.name == "qlora":
        from studio.models import qlora_problem

        problem = qlora_problem()
        if problem:
            lines.append(f"- ⚠️ {md_escape(problem)}")
    return "\n".join(lines) if lines else "✅ The recipe is valid."


def recipe_file(recipe: Recipe) -> str:
    """The recipe written to a file for the download button (named by its content, so repeats are free)."""
    text = recipe.to_yaml()
    folder = downloads_dir() / "recipes" / hashlib.sha1(text.encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    return str(path)


def cli_command(data_state: dict | None) -> str:
    data = data_state["name"] if data_state else "YOUR_DATA.csv"
    return f"python -m studio train recipe.yaml --data {data}"


def summarize(data_state: dict | None, *values) -> tuple:
    """(problems, costs, YAML, download file, CLI, each field's label) for the form as it is now."""
    recipe, problems = recipe_from_values(values, data_state)
    if recipe is None:
        return problems_markdown(None, problems), "", "", None, cli_command(data_state), *field_labels(problems)
    costs = cost_markdown(recipe, data_state) if not problems else "Fix the problems above to see the costs."
    return (problems_markdown(recipe, problems), costs, recipe.to_yaml(), recipe_file(recipe),
            cli_command(data_state), *field_labels(problems))


def restore_settings(saved: list | None) -> tuple:
    """On page load: the form as this browser left it, when what it kept still makes a valid recipe (the browser
    may hold values from an older version of the form); otherwise the form stays as it is."""
    if not isinstance(saved, list) or len(saved) != len(FIELDS):
        return tuple(gr.skip() for _ in FIELDS)
    try:
        recipe, problems = recipe_from_values(saved)
    except Exception:  # noqa: BLE001 - values of the wrong type from the browser
        recipe, problems = None, ["unreadable"]
    if recipe is None or problems:
        return tuple(gr.skip() for _ in FIELDS)
    return tuple(values_from_recipe(recipe))


def size_to(data_state: dict | None, *values) -> tuple:
    """The form with epochs, learning rate, batch and rank suggested for the loaded data's size."""
    recipe, _ = recipe_from_values(values, data_state)
    if recipe is None or not data_state or not data_state.get("examples"):
        return (*[gr.skip()] * len(FIELDS), "")
    if is_preference(data_state) or recipe.method.objective != "sft":
        return preference_sized(recipe, data_state)

    recipe = size_to_data(recipe, data_state["path"])
    n = len(split_examples([None] * data_state["examples"], recipe.data.eval_size, recipe.training.seed)[0])
    note = (f"ℹ️ Sized to your {n} training examples: {recipe.training.epochs:g} epochs, learning rate "
            f"{recipe.training.learning_rate:g}, batch {recipe.training.batch_size}"
            + (f", {recipe.data.paraphrases} rewrites of each question by "
               + (recipe.data.rewrite_model.strip() if recipe.data.rewrite_endpoint.strip() else "the base model")
               if recipe.data.paraphrases else "")
            + (f", {recipe.data.question_forms} rule-based rewordings of each" if recipe.data.question_forms else "")
            + (f", {recipe.data.replay} general answers kept" if recipe.data.replay else "")
            + ". Change anything.")
    return (*values_from_recipe(recipe), note)


def preference_sized(recipe: Recipe, data_state: dict) -> tuple:
    """The objective follows the data: DPO (gentler rate) for a preference file, SFT again for a Q&A file."""
    m = recipe.method
    if is_preference(data_state) and m.objective == "sft":
        t, dpo = recipe.training, load(RECIPES_DIR / DPO_RECIPE).training
        m.objective, t.epochs, t.learning_rate, t.batch_size = "dpo", dpo.epochs, dpo.learning_rate, dpo.batch_size
        note = (f"ℹ️ Preference data: objective set to **DPO**, with {t.epochs:g} epochs, learning rate "
                f"{t.learning_rate:g}, batch {t.batch_size} (as in {DPO_RECIPE}). Pick ORPO to learn the chosen "
                "answers too, and a finished SFT run under *Start from run* to polish it.")
    elif not is_preference(data_state) and m.objective != "sft":
        m.objective, m.init_adapter = "sft", ""

        recipe = size_to_data(recipe, data_state["path"])
        note = "ℹ️ Q&A data: objective set back to **SFT**, and the settings sized to it."
    else:
        return (*[gr.skip()] * len(FIELDS), "")
    return (*values_from_recipe(recipe), note)


def preference_visibility(objective: str) -> tuple:
    """Beta and the start-from run matter for DPO and ORPO only."""
    shown = objective != "sft"
    return gr.Number(visible=shown), gr.Dropdown(visible=shown)


def refresh_adapters(current: str) -> gr.Dropdown:
    return gr.Dropdown(choices=adapter_choices(current or ""))


def recipe_choices() -> list[str]:
    """The shipped recipes by file name: the page never learns where the studio is installed."""
    return [p.name for p in sorted(RECIPES_DIR.glob("*.yaml"))]


def load_shipped(name: str | None) -> tuple:
    """The form filled from one of the shipped recipes, picked by name."""
    if not name or name not in recipe_choices():
        return (*[gr.skip()] * len(FIELDS), "Pick one of the listed recipes." if name else "")
    return load_recipe(str(RECIPES_DIR / name))


def load_recipe(path: str | None, source: str = "file") -> tuple:
    """The form filled from a recipe file; on any problem the form is left as it was and the problems shown."""
    if not path:
        return (*[gr.skip()] * len(FIELDS), "")
    try:
        text = Path(path).read_text(encoding="utf-8")
        recipe = loads(text) if source == "upload" else load(path)
    except (OSError, UnicodeDecodeError) as exc:
        return (*[gr.skip()] * len(FIELDS), f"❌ Cannot read that file: {md_escape(exc)}")
    except RecipeError as exc:
        lines = "\n".join(f"- ❌ {md_escape(p)}" for p in exc.problems)
        return (*[gr.skip()] * len(FIELDS), f"The recipe was not loaded (your form is unchanged):\n{lines}")
    return (*values_from_recipe(recipe), f"✅ Loaded {md_escape(Path(path).name)}.")


# ---- layout ----------------------------------------------------------------------------------------------------


@dataclass
class ModelTab:
    inputs: list  # one component per FIELDS entry, in that order
    base: gr.Textbox
    max_length: gr.Number
    system_prompt: gr.Textbox
    sized_note: gr.Markdown
    summary_outputs: list
    loaded: list  # events after which the whole form changed; app.py chains the summary to them
    objective: gr.Radio
    init_adapter: gr.Dropdown


def build() -> ModelTab:
    start = default_recipe()
    values = dict(zip(FIELDS, values_from_recipe(start), strict=True))
    gr.Markdown("### 2. Model & method\nEvery setting explains itself (hover the ⓘ). The defaults train the "
                "built-in small model on this computer's CPU.")
    with gr.Row():
        recipe_pick = gr.Dropdown(label="Start from a recipe", choices=recipe_choices(),
                                  value=DEFAULT_RECIPE.name, scale=2)
        load_btn = gr.Button("Load recipe", scale=1)
        upload = gr.File(label="…or upload a recipe YAML", file_types=[".yaml", ".yml"], type="filepath", scale=2,
                         height=100)
    load_note = gr.Markdown()
    sized_note = gr.Markdown()
    comps: dict = {}
    with gr.Row():
        for key in PREFERENCE:
            comps[key] = make_component(*key, values[key])
    shown = values[("method", "objective")] != "sft"
    comps[("method", "beta")].visible = comps[("method", "init_adapter")].visible = shown
    with gr.Row():
        with gr.Column():
            for key in SIMPLE[:2]:
                comps[key] = make_component(*key, values[key])
        with gr.Column():
            for key in SIMPLE[2:]:
                comps[key] = make_component(*key, values[key])
    gr.Markdown("<small>These are the choices that matter most; the defaults are sized to your data. Every other "
                "setting (rank, learning rate, batch, extra wordings, held-out size...) is in the Advanced section "
                "below.</small>")
    rest = [key for key in MAIN if key not in SIMPLE] + ADVANCED
    with gr.Accordion("Advanced", open=False), gr.Row():
        half = (len(rest) + 1) // 2
        with gr.Column():
            for key in rest[:half]:
                comps[key] = make_component(*key, values[key])
        with gr.Column():
            for key in rest[half:]:
                comps[key] = make_component(*key, values[key])
    inputs = [comps[key] for key in FIELDS]
    problems = gr.Markdown(label="Checks")
    costs = gr.Markdown()
    with gr.Accordion("Recipe YAML and command line", open=False):
        yaml_view = gr.Code(label="recipe.yaml", language="yaml", interactive=False)
        with gr.Row():
            download = gr.DownloadButton("Download recipe.yaml")
            cli = gr.Textbox(label="Run the same from a terminal", interactive=False, buttons=["copy"])
    summary_outputs = [problems, costs, yaml_view, download, cli, *inputs]  # the inputs: their labels carry problems

    picked = load_btn.click(load_shipped, inputs=[recipe_pick], outputs=[*inputs, load_note],
                               api_visibility="private")
    uploaded = upload.upload(lambda path: load_recipe(path, "upload"), inputs=[upload], outputs=[*inputs, load_note],
                             api_visibility="private")
    objective, beta, init_adapter = (comps[key] for key in PREFERENCE)
    objective.change(preference_visibility, inputs=[objective], outputs=[beta, init_adapter], show_progress="hidden",
                     api_visibility="private")
    init_adapter.focus(refresh_adapters, inputs=[init_adapter], outputs=[init_adapter], show_progress="hidden",
                       api_visibility="private")
    return ModelTab(inputs, comps[("model", "base")], comps[("data", "max_length")], comps[("data", "system_prompt")],
                    sized_note, summary_outputs, [picked, uploaded], objective, init_adapter)
