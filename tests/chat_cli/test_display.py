"""What the chat prints on a terminal (reasoning dimmed and set apart, progress on one line) and through
a pipe (the answer's text only)."""

from __future__ import annotations

import io

from app.chat_cli.display import DIM, RESET, Display, describe_progress


def test_progress_in_words() -> None:
    assert describe_progress({"stage": "processor"}) == "processor"
    assert describe_progress({"stage": "weights", "progress": {"current": 3, "total": 10}}) == "weights 3/10"
    download = {"stage": "download", "progress": {"current": 1_500_000, "total": 269_100_000}}
    assert describe_progress(download) == "download 1.5 MB/269.1 MB"
    assert describe_progress({"stage": "download", "progress": {"current": 512, "total": None}}) == "download 512 B"


def test_on_a_terminal_reasoning_is_dimmed_then_the_answer_follows_apart() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, styled=True)
    for kind, text in [("reasoning", "hm"), ("reasoning", "m"), ("content", "Paris.")]:
        display.piece(kind, text)
    display.end_answer()
    assert out.getvalue() == f"{DIM}hmm{RESET}\n\nParis.\n\n" and not display.answering


def test_through_a_pipe_only_the_answer_and_stage_changes_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = Display(out, err, styled=False)
    for stage in ("processor", "weights", "weights"):
        display.progress("m", {"status": "loading", "stage": stage})
    display.loaded("m", cached=False)
    display.piece("reasoning", "hidden")
    display.piece("content", "Paris.")
    display.end_answer()
    display.note("Saved.")
    assert out.getvalue() == "Paris.\n"
    assert err.getvalue() == "loading m: processor\nloading m: weights\nloaded m\nSaved.\n"
