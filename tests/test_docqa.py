"""Documents (studio.data.documents: reading, cutting passages) and drafting Q&A from them (studio.docqa)."""

from __future__ import annotations

import socket

import pytest
from fake_endpoint import serve

from studio.data import DocumentError, read_document, split_passages
from studio.docqa import draft_pairs, parse_pairs

CANNED = ("Here are the pairs:\n\nQ: When does the Saltwren leave?\nA: At 6:40 every morning.\n\n"
          "Q: How long is the crossing?\nA: 155 minutes.\n\nQ: What about the weather?\n")  # last one: no answer


def tiny_pdf(path, text: str) -> None:
    """A one-page PDF with a Helvetica text stream, written by hand (pypdf reads text but cannot lay it out)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(out)


# ---- reading -------------------------------------------------------------------------------------------------


def test_reads_txt_md_in_any_common_encoding(tmp_path):
    (tmp_path / "a.txt").write_bytes("Fähre um 6:40.\r\n".encode("cp1252"))
    assert read_document(tmp_path / "a.txt") == "Fähre um 6:40."
    (tmp_path / "b.md").write_text("# Fares\n\nA day ticket costs 12 marks.\n", encoding="utf-8")
    assert read_document(tmp_path / "b.md").startswith("# Fares")


def test_reads_docx_with_headings_and_tables(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("Timetable", level=1)
    document.add_paragraph("The Saltwren leaves at 6:40.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Route", "Minutes"
    document.save(tmp_path / "manual.docx")
    text = read_document(tmp_path / "manual.docx")
    assert text.startswith("# Timetable\n\nThe Saltwren leaves at 6:40.") and "Route | Minutes" in text


def test_reads_pdf(tmp_path):
    tiny_pdf(tmp_path / "manual.pdf", "The crossing takes 155 minutes.")
    assert "The crossing takes 155 minutes." in read_document(tmp_path / "manual.pdf")


@pytest.mark.parametrize("name, content, message", [
    ("broken.pdf", b"%PDF-1.4\nnot really", "could not be read as a PDF"),
    ("broken.docx", b"PK\x03\x04 not a zip at all", "could not be opened as a Word document"),
    ("old.doc", b"\xd0\xcf\x11\xe0", "not '.doc'"),
    ("empty.txt", b"  \n", "no text"),
    ("binary.txt", bytes(range(256)) * 4, "binary data"),
])
def test_bad_documents_fail_plainly(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DocumentError, match=message):
        read_document(tmp_path / name)
    with pytest.raises(DocumentError, match="not found"):
        read_document(tmp_path / "missing.txt")


# ---- passages and parsing -------------------------------------------------------------------------------------


def test_split_passages_follows_headings_merges_small_and_cuts_long():
    text = ("# Ferries\n\nIntro.\n\n## Fares\n\n" + "A fare sentence. " * 30 + "\n\n## Times\n\nShort.\n\nShorter.\n\n"
            "## Long\n\n" + "A long sentence here. " * 60 + "\n\n## Trailing heading")
    passages = split_passages(text, max_chars=400)
    assert all(len(p) <= 400 for p in passages)
    assert passages[0].startswith("# Ferries\n\nIntro.\n\n## Fares\n\nA fare")  # small intro merged forward
    assert any(p.startswith("## Times\n\nShort.\n\nShorter.") for p in passages)
    assert all(not p.rstrip().endswith("## Trailing heading") for p in passages)  # a heading is never left alone
    assert "".join(passages).count("A long sentence here.") == 60  # nothing lost in the cut
    assert split_passages("") == [] and split_passages("One line.") == ["One line."]


def test_parse_pairs_is_lenient_about_form_and_counts_junk():
    pairs, dropped = parse_pairs(CANNED)
    assert pairs == [("When does the Saltwren leave?", "At 6:40 every morning."),
                     ("How long is the crossing?", "155 minutes.")]
    assert dropped == 1
    pairs, dropped = parse_pairs("1. **Question 1:** Who founded it?\n**Answer:** Vessa and\nTamsin Ondrake.\n"
                                 "Q2) Where?\nA2) Quillonmere.\nA: an answer with no question\n"
                                 "Q: <question>\nA: <answer>\nQ:\nA: empty question")
    assert pairs == [("Who founded it?", "Vessa and Tamsin Ondrake."), ("Where?", "Quillonmere.")]
    assert dropped == 3
    assert parse_pairs("I cannot do that.") == ([], 1)
    assert parse_pairs("") == ([], 0)


# ---- drafting ------------------------------------------------------------------------------------------------


def test_draft_pairs_with_a_local_model_runs_end_to_end(tiny_model_dir):
    result = draft_pairs(["The Saltwren leaves at 6:40.", "The crossing takes 155 minutes."],
                         model=str(tiny_model_dir), per_passage=2, max_new_tokens=8)
    # A random 16-wide model writes junk; the path must still finish, keep only real pairs and count the rest.
    assert all(p["question"] and p["answer"] and p["passage"] for p in result.pairs)
    assert result.dropped >= 0 and (result.dropped == 0 or "left out" in result.messages[-1])


@pytest.fixture
def endpoint():
    """A local OpenAI-style server answering every chat completion with CANNED; records what it was sent."""
    with serve(lambda body: CANNED) as server:
        yield server


def test_draft_pairs_through_an_endpoint(endpoint):
    url, seen = endpoint
    result = draft_pairs(["Passage one.", "Passage two."], model="my-model", endpoint=url, api_key="k")
    assert [s["path"] for s in seen] == ["/v1/chat/completions"] * 2
    assert seen[0]["auth"] == "Bearer k" and seen[0]["body"]["model"] == "my-model"
    assert "Passage one." in seen[0]["body"]["messages"][-1]["content"]
    # Both passages got the same canned reply: the repeated questions are dropped, as are answerless drafts.
    assert [p["question"] for p in result.pairs] == ["When does the Saltwren leave?", "How long is the crossing?"]
    assert result.pairs[0]["passage"] == "Passage one."
    assert result.dropped == 4 and "4 drafts could not be used" in result.messages[0]
    base_url = url.removesuffix("/chat/completions")  # a base URL works too
    assert draft_pairs(["P."], endpoint=base_url).pairs
    result = draft_pairs(["P."], endpoint=url, api_key="wrong")
    assert not result.pairs and "HTTP 401" in result.messages[0] and "API key" in result.messages[0]


def test_unreachable_endpoint_is_a_plain_message():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again on exit: nothing listens there
    result = draft_pairs(["P1.", "P2."], endpoint=f"http://127.0.0.1:{port}/v1/chat/completions")
    assert result.pairs == [] and len(result.messages) == 1
    assert result.messages[0].startswith(f"Could not reach the endpoint http://127.0.0.1:{port}")


def test_cli_writes_a_reviewable_csv_that_studio_can_train_on(endpoint, tmp_path, capsys):
    from studio.cli import main
    from studio.data import load_data

    url, _ = endpoint
    (tmp_path / "manual.md").write_text("# Ferries\n\nThe Saltwren leaves at 6:40.\n", encoding="utf-8")
    out = tmp_path / "pairs.csv"
    assert main(["generate-qa", str(tmp_path / "manual.md"), "--out", str(out), "--endpoint", url]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == "question,answer"
    report = load_data(out)
    assert report.ok and len(report.examples) == 2 and report.format == "qa"
    assert "1 draft could not be used" in capsys.readouterr().err
    assert main(["generate-qa", str(tmp_path / "nope.pdf"), "--out", str(out)]) == 2
