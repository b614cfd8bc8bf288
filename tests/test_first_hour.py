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
