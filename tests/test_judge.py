"""The optional judge (studio/judge.py): a larger model behind an OpenAI-compatible endpoint grades each tuned answer
against the reference; the grades sit beside the exact-fact check; a shared studio uses only the operator's judge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from studio import judge, loop, policy, service
from studio.compare import summary
from tests.fake_endpoint import serve
from tests.test_compare import QUESTIONS, make_run

REPO = Path(__file__).resolve().parent.parent
ANSWERS = ["It was founded in 1873.", "About an hour.", "Agnes Holloway did.", "There are 60 ferries."]


def grader(body: dict) -> str:
    """A judge that reads the prompt as a real one would: the answer holds the reference's key fact, or not."""
    text = body["messages"][-1]["content"]
    reference = text.split("Reference answer: ")[1].split("\n")[0]
    answer = text.split("Student's answer: ")[1].split("\n")[0]
    key = next(k for _, ref, k in QUESTIONS if ref == reference)
    if "Holloway" in answer:
        return "Partly: names the founder but not in full."
    return "Correct: same fact." if key in answer else f"Wrong - the reference says {key}."


@pytest.mark.parametrize(("reply", "grade"), [("Correct: same year.", "correct"),
                                              ("**Partially** - one part", "partly"),
                                              ("incorrect. says 60", "wrong"), ("I think so", "?")])
def test_the_judges_line_is_read_whatever_its_form(reply, grade):
    assert judge.parse(reply)[0] == grade


def test_each_answer_is_graded_and_kept_beside_the_exact_check(runs_root, monkeypatch):
    run = make_run(runs_root, "run-a", [], ANSWERS, [1.0])
    monkeypatch.setenv("STUDIO_JUDGE_API_KEY", "sekret")
    with serve(grader) as (url, seen):
        report = loop.judge("run-a", url, "big-judge")
    assert report["counts"] == {"correct": 1, "partly": 1, "wrong": 2, "?": 0}
    grades = {r["question"]: r["grade"] for r in report["rows"]}
    assert grades["When was the company founded?"] == "correct"
    assert grades["How many ferries are there?"] == "wrong"  # "60 ferries" for 6 ferries
    assert seen[0]["auth"] == "Bearer sekret" and seen[0]["body"]["model"] == "big-judge"
    assert seen[0]["body"]["temperature"] == 0.0
    assert judge.read(run) == report
    figures = summary(run)
    assert (figures["judged_correct"], figures["judged"], figures["answered"]) == (1, 4, 2)  # both, side by side
    assert judge.summary_line(report) == "The judge (big-judge) graded 4 answers: 1 correct, 1 partly, 2 wrong."


def test_problems_are_plain_messages(runs_root):
    make_run(runs_root, "run-a", [], ANSWERS, [1.0])
    (runs_root / "run-b").mkdir()
    with pytest.raises(service.UserError, match="No judge is set"):
        loop.judge("run-a")
    with pytest.raises(service.UserError, match="no held-out answers"):
        loop.judge("run-b", "http://127.0.0.1:9/v1", "m")
    with pytest.raises(service.UserError, match="Could not reach the endpoint"):
        loop.judge("run-a", "http://127.0.0.1:9/v1", "m")


def test_a_shared_studio_refuses_a_visitors_judge_and_uses_the_operators(runs_root, monkeypatch):
    make_run(runs_root, "run-a", [], ANSWERS, [1.0])
    monkeypatch.setenv("STUDIO_SHARED", "1")
    assert policy.shared_mode()
    with pytest.raises(service.UserError, match="judge endpoint: turned off on a shared studio"):
        loop.judge("run-a", "http://169.254.169.254/v1", "m")
    with serve(grader) as (url, seen):
        monkeypatch.setenv("STUDIO_JUDGE_ENDPOINT", url)
        monkeypatch.setenv("STUDIO_JUDGE_MODEL", "operators-judge")
        report = loop.judge("run-a")
    assert report["model"] == "operators-judge" and len(seen) == 4


def test_the_cli_judges_a_run(runs_root):
    make_run(runs_root, "run-a", [], ANSWERS, [1.0])
    with serve(grader) as (url, _):
        done = subprocess.run([sys.executable, "-m", "studio", "judge", "run-a", "--endpoint", url, "--model", "j"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("The judge (j) graded 4 answers: 1 correct, 1 partly, 2 wrong.")
    assert "wrong: How many ferries are there?" in done.stdout
