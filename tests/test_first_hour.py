"""A domain expert's first hour (#18), through the plain functions behind the page: every long step says what it
does, how far it is and how long is left; the verdict on a small upload is honest; nothing the user did is lost."""

from __future__ import annotations

from studio import runs


def test_the_train_tab_names_the_phase_and_the_wall_time_from_the_first_second():
    from studio.ui.train_tab import progress_html, status_markdown

    status = {"state": "queued", "phase": "drafting", "message": "Drafting rewrites: 3 of 26 done, about 40 s left.",
              "phases": [["waiting", 100.0], ["preparing", 101.0], ["drafting", 104.0]]}
    bar = progress_html(status, [], now=125.0)
    assert "Drafting extra examples" in bar and "25 s since Start" in bar and "step" not in bar
    text = status_markdown("run-1", status)
    assert "drafting extra examples" in text and "queued" not in text and "3 of 26" in text
    done = {"state": "done", "phase": "ended", "step": 6, "total": 6, "phases": status["phases"]}
    assert "since Start" not in progress_html(done, [], now=500.0)
    assert runs.duration(125) == "2 min 05 s" and runs.duration(7) == "7 s" and runs.duration(3725) == "1 h 02 min"


def test_evaluate_counts_questions_and_fills_rows_as_they_come(tiny_run):
    """Evaluate used to run minutes behind a bare spinner: now the first update is at once, each chunk counts
    "N of M done" with the time left, rows fill in, and the last update is the scored table."""
    from studio.evaluate import CHUNK_FIRST
    from studio.ui import eval_tab

    updates = list(eval_tab.evaluate_run(tiny_run, None, 8))
    lines = [text for text, _ in updates]
    assert lines[0].startswith("⏳ Reading the questions"), lines[0]
    total = len(updates[-1][1])
    assert total > CHUNK_FIRST
    assert any(f"0 of {total} done" in line for line in lines)
    counted = [line for line in lines if "left" in line]
    assert counted and f"{CHUNK_FIRST} of {total} done" in counted[0], counted
    assert len(updates[2][1]) == CHUNK_FIRST and len(updates[-2][1]) == total  # rows arrive chunk by chunk
    assert "Contains answer" in lines[-1] and "⏳" not in lines[-1]

    forgetting = list(eval_tab.check_forgetting(tiny_run))
    assert "0 of" in forgetting[0] and "General questions right" in forgetting[-1]


def test_both_chat_panes_show_the_question_at_once_and_the_waiting_one_says_why(tiny_run):
    from studio.ui import chat_tab

    updates = list(chat_tab.converse(tiny_run, "Who founded the ferry company?", [], [], [], 0.0, 8))
    base, sft, tuned, _ = updates[0]
    assert base[-1]["content"] == chat_tab.LOADING and "one after the other" in tuned[-1]["content"] and sft == []
    assert [m["role"] for m in base] == [m["role"] for m in tuned] == ["user", "assistant"]
    base, _, tuned, _ = updates[-1]
    assert "⏳" not in base[-1]["content"] and "⏳" not in tuned[-1]["content"]
    # A follow-up question sends the earlier turns, never the notices.
    again = list(chat_tab.converse(tiny_run, "And when?", base, [], tuned, 0.0, 4))
    assert len(again[-1][0]) == 4 and all("⏳" not in m["content"] for m in again[-1][2])
