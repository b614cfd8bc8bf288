import re
import socket

import pytest
from fake_endpoint import serve

from studio.augment import keep_rewrite, paraphrase_examples
from studio.data import examples_from_pairs
from studio.recipe import Recipe


def test_rewrites_must_be_new_questions_that_keep_the_names():
    q = "What time does the MV Saltwren leave Quillonmere for Hestrel Point?"
    seen: set[str] = set()
    assert keep_rewrite("When does the MV Saltwren depart Quillonmere for Hestrel Point?", q, seen)
    assert not keep_rewrite(q, q, seen), "the original itself adds nothing"
    assert not keep_rewrite("Which bird flies from the salt lake to the sea?", q, seen), "lost every name"
    assert not keep_rewrite("When does the MV Saltwren depart Quillonmere", q, seen), "not a question"
    assert not keep_rewrite("Saltwren?", q, seen), "too short to ask the same thing"
    seen.add("when does the mv saltwren depart quillonmere for hestrel point")
    assert not keep_rewrite("When does the MV Saltwren depart Quillonmere for Hestrel Point?", q, seen), "duplicate"


def test_paraphrase_examples_keep_the_answer_and_row(tiny_model_dir, default_tokenizer):
    from studio.models import load_model

    model = load_model(str(tiny_model_dir))
    examples = examples_from_pairs([("Who founded Brindlewick?", "Vessa Ondrake."), ("Where is it?", "Tarrowgate.")])
    extra = paraphrase_examples(model, default_tokenizer, examples, per_question=2, max_new_tokens=8)
    assert len(extra) <= 4
    for e in extra:  # a random tiny model rarely writes a usable rewrite; whatever it keeps must be well formed
        assert e.answer in ("Vessa Ondrake.", "Tarrowgate.") and e.question.endswith("?")
    assert paraphrase_examples(model, default_tokenizer, examples, per_question=0) == []


def test_rewrites_may_not_invent_a_number():
    q, a = "When was the Brindlewick Ferry Company founded?", "It was founded in 1873."
    assert not keep_rewrite("When did the Brindlewick Ferry Company start in 1899?", q, set(), a)
    assert keep_rewrite("Was the Brindlewick Ferry Company founded in 1873?", q, set(), a), "the answer's own figure"


class _Scripted:
    """A stand-in model whose 'generation' is fixed text, to test what replay keeps of finished and cut answers.

    Its "cache" only tracks which replies are still in the batch, as rows leave it.
    """

    training = True

    def __init__(self, tokenizer, replies: list[str]):
        self.tokenizer = tokenizer
        pad = tokenizer(" ", add_special_tokens=False)["input_ids"][0]  # not EOS: only finished rows hold EOS
        rows = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in replies]
        self.rows = [r + [pad] * (64 - len(r)) for r in rows]

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode

    def __call__(self, input_ids, past_key_values=None, **_):
        import types

        import torch

        if past_key_values is None:
            past_key_values = types.SimpleNamespace(live=torch.arange(input_ids.shape[0]), step=0)
            past_key_values.batch_select_indices = lambda keep: setattr(past_key_values, "live",
                                                                        past_key_values.live[keep])
        logits = torch.zeros(len(past_key_values.live), 1, len(self.tokenizer))
        for i, row in enumerate(past_key_values.live.tolist()):
            logits[i, 0, self.rows[row][past_key_values.step]] = 1.0
        past_key_values.step += 1
        return types.SimpleNamespace(logits=logits, past_key_values=past_key_values)


def test_replay_keeps_finished_answers_and_trims_cut_ones(default_tokenizer):
    from studio.augment import replay_examples

    eos = default_tokenizer.eos_token
    model = _Scripted(default_tokenizer, [f"Rome is the capital.{eos}", "There are 24 hours. A day has a dark half and",
                                          "no sentence end at all and cut"])
    out = replay_examples(model, default_tokenizer, ["Capital of Italy?", "Hours in a day?", "Say something."])
    assert [(e.question, e.answer) for e in out] == [("Capital of Italy?", "Rome is the capital."),
                                                     ("Hours in a day?", "There are 24 hours.")]
    assert model.training, "the model is handed back in the mode it came in"
    assert replay_examples(model, default_tokenizer, []) == []


def test_training_with_replay_lists_the_general_answers(tiny_model_dir, tmp_path):
    from studio import runs
    from studio.recipe import Recipe
    from studio.train import train

    data = tmp_path / "qa.csv"
    data.write_text("question,answer\n" + "".join(f"Question {i}?,Answer {i}.\n" for i in range(6)), encoding="utf-8")
    recipe = Recipe()
    recipe.model.base = str(tiny_model_dir)
    recipe.data.replay, recipe.data.eval_size = 3, 0
    recipe.training.max_steps, recipe.training.batch_size = 2, 4
    run_dir = train(recipe, data, tmp_path / "run", log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done"
    assert (run_dir / "data" / "replay.jsonl").exists()
    assert "general questions" in (run_dir / "train.log").read_text()


def test_training_with_question_forms_lists_and_trains_on_them(tiny_model_dir, pairs_csv, tmp_path):
    from studio import runs
    from studio.recipe import Recipe
    from studio.train import train

    recipe = Recipe()
    recipe.model.base = str(tiny_model_dir)
    recipe.data.question_forms, recipe.data.eval_size = 2, 0
    recipe.training.epochs, recipe.training.batch_size = 1, 8
    run_dir = train(recipe, pairs_csv, tmp_path / "run", log=lambda _: None)
    status = runs.read_status(run_dir)
    assert status["state"] == "done"
    forms = runs.read_jsonl(run_dir / "data" / "question_forms.jsonl")
    assert len(forms) == 24, "two forms of each of the 12 questions"
    assert {f["messages"][1]["content"] for f in forms} == {
        r["messages"][1]["content"] for r in runs.read_jsonl(run_dir / "data" / "train.jsonl")}
    for form in forms:  # each form is asked about its own item and answered with that item's answer
        question, answer = form["messages"][0]["content"], form["messages"][1]["content"]
        assert re.search(r"item (\d+)", question).group(1) == re.search(r"item (\d+)", answer).group(1)
    assert status["step"] == 5, "36 examples in batches of 8: the forms are trained on"



def test_nucleus_sampling_draws_from_the_full_vocabularys_nucleus():
    """Top-p over the whole vocabulary, whether the nucleus fits in top_k (one path) or not (the other)."""
    import torch

    from studio.kernels.complete import nucleus_sample

    logits = torch.full((1, 300), -20.0)
    logits[0, [7, 42, 99, 150, 201]] = torch.tensor([3.0, 2.5, 2.0, 1.5, 1.0])  # the 0.95 nucleus: these five
    logits[0, 250] = 0.2  # next in line, left out: the five before it hold more than 0.95
    probs = logits.softmax(-1)[0]
    assert probs[[7, 42, 99, 150]].sum() < 0.95 < probs[[7, 42, 99, 150, 201]].sum()
    torch.manual_seed(0)
    for top_k in (50, 3):  # fits in top_k; wider than top_k
        draws = nucleus_sample(logits.expand(4000, -1), 0.95, top_k)
        assert set(draws.tolist()) == {7, 42, 99, 150, 201}
        share = (draws == 7).float().mean().item()
        assert abs(share - probs[7] / probs[[7, 42, 99, 150, 201]].sum()) < 0.03


def test_the_completion_loop_writes_what_generate_writes(tiny_model_dir):
    """Greedy completions through the shared prefix, the roomy cache and rows leaving the batch equal generate's."""
    import torch
    from transformers import AutoModelForCausalLM

    from studio.kernels.complete import complete
    from studio.models import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = [f"Rewrite each question.\n\nQuestion: {q}\nRewrite:" for q in
               ("Where is the harbour?", "Who runs the night boat to the far island?", "How much?", "Why?")]
    singles = []
    with torch.inference_mode():
        for p in prompts:
            ids = tokenizer(p, return_tensors="pt", add_special_tokens=False)["input_ids"]
            singles.append(model.generate(ids, do_sample=False, max_new_tokens=10)[0, ids.shape[1]:].tolist())
    # Stop at the token the first row writes third: that row leaves early, the rest run on.
    stop = {singles[0][2]}
    out, stopped = complete(model, tokenizer, prompts, 1, 10, stop)
    assert stopped[0]
    for single, row, ended in zip(singles, out.tolist(), stopped.tolist(), strict=True):
        end = next((i for i, t in enumerate(single) if t in stop), len(single) - 1) + 1 if ended else len(single)
        assert row[:end] == single[:end]


def _rewrites(body: dict) -> str:
    """A larger model's reply to "...item N?": two good rewrites, a repeat of the original, one with an
    invented number and another fact's question."""
    question = body["messages"][-1]["content"].rsplit("Question: ", 1)[1]
    n = re.search(r"item (\d+)", question).group(1)
    return (f"1. Which code word goes with item {n}?\n2) \"Tell me item {n}'s code word?\"\n- {question}\n"
            f"3. What is the code word for item {n} in 1999?\n4. What is the code word for item {(int(n) + 1) % 12}?")


@pytest.fixture
def rewriter():
    with serve(_rewrites) as (url, seen):
        yield url.removesuffix("/chat/completions"), seen  # the base URL, as a user gives Ollama's


def test_rewrites_from_an_endpoint_are_checked_kept_and_reused(tiny_model_dir, pairs_csv, tmp_path, rewriter,
                                                               monkeypatch):
    from test_train import tiny_recipe

    from studio import runs
    from studio.train import train

    url, seen = rewriter
    monkeypatch.setenv("STUDIO_REWRITE_API_KEY", "sekrit-key")
    recipe = tiny_recipe(tiny_model_dir, "data.paraphrases=2", f"data.rewrite_endpoint={url}",
                         "data.rewrite_model=big-model", "training.max_steps=2", "training.seed=5")
    run_dir = train(recipe, pairs_csv, tmp_path / "run", log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done"
    assert len(seen) == 10  # one request per training question (2 of the 12 are held out)
    assert {s["auth"] for s in seen} == {"Bearer sekrit-key"}
    assert {s["body"]["model"] for s in seen} == {"big-model"} and seen[0]["body"]["temperature"] == 0.8
    listed = runs.read_jsonl(run_dir / "data" / "paraphrases.jsonl")
    assert len(listed) == 20  # the repeat, the invented year and the other fact's question were dropped
    for row in listed:
        question, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        n = re.search(r"item (\d+)", question).group(1)
        assert question in (f"Which code word goes with item {n}?", f"Tell me item {n}'s code word?")
        assert answer == f"The code word for item {n} is zorblax{n}."
    assert runs.read_status(run_dir)["train_examples"] == 30
    for path in run_dir.rglob("*"):  # the key stays in the environment
        assert not path.is_file() or b"sekrit-key" not in path.read_bytes(), path
    again = train(recipe, pairs_csv, tmp_path / "again", log=lambda _: None)
    assert len(seen) == 10 and "Reused 20 rewritten questions big-model wrote" in (again / "train.log").read_text()


def test_an_unreachable_rewrite_endpoint_fails_the_run_plainly(tiny_model_dir, pairs_csv, tmp_path):
    from test_train import tiny_recipe

    from studio import runs
    from studio.train import train

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again on exit: nothing listens there
    recipe = tiny_recipe(tiny_model_dir, "data.paraphrases=2", f"data.rewrite_endpoint=http://127.0.0.1:{port}/v1",
                         "data.rewrite_model=big-model", "training.max_steps=2")
    status = runs.read_status(train(recipe, pairs_csv, tmp_path / "run", log=lambda _: None))
    assert status["state"] == "failed" and not status.get("step")
    assert status["message"].startswith(f"data.rewrite_endpoint: Could not reach the endpoint http://127.0.0.1:{port}")


def test_a_rewrite_endpoint_is_checked_and_refused_on_a_shared_studio(monkeypatch):
    from studio import service as api
    from studio.recipe import apply_overrides, validate

    bad = "\n".join(validate(apply_overrides(Recipe(), ["data.rewrite_endpoint=localhost:11434"])))
    assert "data.rewrite_endpoint: 'localhost:11434' is not an http:// or https:// URL" in bad
    assert "set data.rewrite_model too" in bad
    good = apply_overrides(Recipe(), ["data.rewrite_endpoint=http://localhost:11434/v1", "data.rewrite_model=m"])
    assert validate(good) == [] and api.shared_problems(good) == []
    monkeypatch.setenv("STUDIO_SHARED", "1")
    assert any(p.startswith("data.rewrite_endpoint: turned off on a shared studio") for p in api.shared_problems(good))


def test_rewrites_must_ask_for_the_same_kind_of_thing():
    from studio.augment import asks_for

    q = "What time does the MV Saltwren leave Quillonmere for Hestrel Point?"
    assert asks_for(q) == "time" and asks_for("In what year was it founded?") == "time"
    assert not keep_rewrite("How far is Hestrel Point from Quillonmere?", q, set()), "a distance, not a time"
    assert not keep_rewrite("How long is the MV Saltwren's trip to Hestrel Point?", q, set()), "a duration"
    assert keep_rewrite("When does the MV Saltwren depart Quillonmere for Hestrel Point?", q, set())
    assert keep_rewrite("Which hour does the MV Saltwren leave Quillonmere?", q, set()), "'which' can ask anything"
    child = "How much is the child fare on Brindlewick ferries?"
    assert keep_rewrite("What is the cost of a child fare on Brindlewick ferries?", child, set())
    assert not keep_rewrite("Who sells the child fare on Brindlewick ferries?", child, set())
    dish = "What is the signature dish at The Salted Kettle?"
    assert not keep_rewrite("Who is The Salted Kettle's signature dish?", dish, set()), "'what' is not narrowed"
    dog = "Can I bring my dog on a Brindlewick ferry?"
    assert not keep_rewrite("What is the best dog on a Brindlewick ferry?", dog, set()), "no longer a yes/no question"


def test_question_forms_are_exact_rewordings():
    from studio.question_forms import forms_of, question_form_examples

    rules, wrapped = forms_of("What is the Brindlewick loyalty programme called?")
    assert "What is the name of the Brindlewick loyalty programme?" in rules
    assert "Name the Brindlewick loyalty programme." in rules
    assert "what is the brindlewick loyalty programme called" in wrapped
    rules, _ = forms_of("How much is a car ticket on a Brindlewick ferry?")
    assert "What does a car ticket on a Brindlewick ferry cost?" in rules
    rules, _ = forms_of("Who is the captain of the MV Saltwren?")
    assert "Tell me who the captain of the MV Saltwren is." in rules
    rules, _ = forms_of("What are Brindlewick loyalty points called?")
    assert "What are the name of Brindlewick loyalty points?" not in rules
    assert forms_of("Wann fährt die Fähre ab?") == ([], []), "rules are for English questions only"
    assert forms_of("Explain the Brindlewick fare rules.") == ([], []), "an instruction is not a question"
    rules, wrapped = forms_of("how much is a car ticket on a Brindlewick ferry")
    assert "What does a car ticket on a Brindlewick ferry cost?" in rules, "a question without its question mark"
    rules, _ = forms_of("What does the sourdough loaf cost at Crumb & Co?")
    assert rules == ["How much does the sourdough loaf cost at Crumb & Co?",
                     "What is the price of the sourdough loaf at Crumb & Co?"], rules
    assert forms_of("What colour is the MV Saltwren?")[0] == ["Which colour is the MV Saltwren?"]
    assert forms_of("What does Brindlewick mean?")[0] == [], "never 'Which does ...'"

    pairs = [("What is the MV Saltwren called?", "A ship."), ("What is the name of the MV Saltwren?", "Saltwren."),
             ("Wie heißt das Schiff?", "Saltwren.")]
    out = question_form_examples(examples_from_pairs(pairs), per_question=3, seed=1)
    asked = [e.question for e in out]
    assert len(out) == 6, "three forms for each English question, none for the German one"
    assert "What is the name of the MV Saltwren?" not in asked, "another fact's question is not taught again"
    assert all(e.answer == "A ship." for e in out if "called" in e.question or e.row == 1)
    assert out == question_form_examples(examples_from_pairs(pairs), per_question=3, seed=1), "seeded"
    assert question_form_examples(examples_from_pairs(pairs), per_question=0) == []
