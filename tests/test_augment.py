from studio.augment import keep_rewrite, paraphrase_examples
from studio.data import examples_from_pairs


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
