"""The prompt history file: private, shared by running apps, safe against torn lines and hostile text."""

from __future__ import annotations

import json
import stat

from mfu_tui.tui import prompt_history
from mfu_tui.tui.prompt_history import PromptHistory


def test_prompts_are_kept_in_a_private_file_and_read_back(tmp_path):
    path = tmp_path / "data" / "prompts.jsonl"
    history = PromptHistory(path)
    for prompt in ("one", "two", "two", "line\nbreak", "   "):
        history.add(prompt)
    assert history.entries == ["one", "two", "line\nbreak"]  # no repeats in a row, no blanks
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert PromptHistory(path).entries == history.entries


def test_a_torn_last_line_and_hostile_text_do_not_come_back_raw(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps("kept") + "\n" + json.dumps("\x1b[2Jtitle\x9b") + "\n" + '"cut by a cra')
    assert PromptHistory(path).entries == ["kept", "title"]  # the sequence and C1 dropped


def test_matching_is_newest_first_each_once_any_case(tmp_path):
    history = PromptHistory(None)
    for prompt in ("Explain tracebacks", "other", "explain tracebacks", "Explain tracebacks"):
        history.add(prompt)
    assert history.matching("TRACE") == ["Explain tracebacks", "explain tracebacks"]


def test_the_file_is_cut_back_to_the_newest_prompts(tmp_path, monkeypatch):
    monkeypatch.setattr(prompt_history, "KEEP", 5)
    path = tmp_path / "prompts.jsonl"
    history = PromptHistory(path)
    for n in range(12):
        history.add(f"prompt {n}")
    lines = path.read_text().splitlines()
    assert len(lines) < 10  # rewritten once it held twice KEEP
    assert PromptHistory(path).entries == [f"prompt {n}" for n in range(7, 12)]
