"""The app's pure helpers: status words, clipboard sequence, terminal checks, settings, export."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mfu_tui.client import ConnectionState, Problem, Status
from mfu_tui.protocol import ChatDetail, ChatSummary, StoredMessage
from mfu_tui.tui.advice import advise_stopped
from mfu_tui.tui.ascii_only import AsciiOnly, ascii_key_display, stand_in
from mfu_tui.tui.clipboard import osc52_sequence
from mfu_tui.tui.export import chat_markdown, export_chat
from mfu_tui.tui.settings import AppSettings
from mfu_tui.tui.status_text import LocalStart, describe_local_start, describe_state, next_change
from mfu_tui.tui.terminal import ascii_only_wanted, colour_wanted, plain_text_wanted


@pytest.mark.parametrize(
    ("state", "symbolic", "plain", "tone"),
    [
        (ConnectionState(Status.CONNECTED, rtt=0.0123), "● online 12 ms", "[online 12 ms]", "ok"),
        (ConnectionState(Status.CONNECTED, rtt=0.0002), "● online <1 ms", "[online <1 ms]", "ok"),
        (
            ConnectionState(Status.CONNECTED, rtt=0.0123, storage_unavailable="the database is out of reach"),
            "● server storage unavailable",
            "[server storage unavailable]",
            "warning",
        ),
        (
            ConnectionState(Status.CONNECTED, rtt=0.0123, checking=True),
            "● checking connection",
            "[checking connection]",
            "warning",
        ),
        (ConnectionState(Status.CONNECTING), "● connecting", "[connecting]", "warning"),
        (ConnectionState(Status.RECONNECTING, retry_at=102.4), "● retry in 3 s", "[reconnecting in 3 s]", "warning"),
        (
            ConnectionState(Status.RECONNECTING, retry_at=102.4, last_error="connection refused"),
            "● retry in 3 s: connection refused",
            "[reconnecting in 3 s: connection refused]",
            "warning",
        ),
        (
            ConnectionState(Status.RECONNECTING, last_error="server answered HTTP 503: lost the link"),
            "● connecting again",
            "[connecting again]",
            "warning",
        ),
        (
            ConnectionState(Status.RECONNECTING, retry_at=99.0, last_error="connection refused"),
            "● connecting again",
            "[connecting again]",
            "warning",
        ),
        (
            ConnectionState(
                Status.DISCONNECTED, reason="auth refused: unauthorized: token expired", problem=Problem.TOKEN_REFUSED
            ),
            "● offline: signed out",
            "[offline: signed out]",
            "error",
        ),
        (
            ConnectionState(
                Status.DISCONNECTED,
                reason="server unreachable at ws://127.0.0.1:5799/ws: connection refused",
                problem=Problem.UNREACHABLE,
                last_error="connection refused",
                retry_at=110.0,
            ),
            "● offline: unreachable: connection refused",
            "[offline: unreachable: connection refused]",
            "error",
        ),
        (
            ConnectionState(
                Status.DISCONNECTED,
                reason="no WebSocket endpoint at ws://h:1/wss (HTTP 404): check the path, usually /ws",
                problem=Problem.NO_WEBSOCKET,
            ),
            "● offline: no chat server there",
            "[offline: no chat server there]",
            "error",
        ),
    ],
)
def test_status_words(state: ConnectionState, symbolic: str, plain: str, tone: str) -> None:
    assert describe_state(state, now=100.0) == (symbolic, tone)
    assert describe_state(state, now=100.0, plain=True) == (plain, tone)


@pytest.mark.parametrize(
    ("state", "change"),
    [
        (ConnectionState(Status.RECONNECTING, retry_at=102.4), 0.4),  # "3 s" until 2 s are left
        (ConnectionState(Status.RECONNECTING, retry_at=103.0), 1.0),  # "3 s" for a whole second
        (ConnectionState(Status.RECONNECTING, retry_at=100.25), 0.25),  # "1 s" until the attempt
        (ConnectionState(Status.RECONNECTING, retry_at=100.0), None),  # the attempt is due: no count
        (ConnectionState(Status.RECONNECTING), None),
        (ConnectionState(Status.DISCONNECTED, retry_at=110.0, problem=Problem.UNREACHABLE), None),
        (ConnectionState(Status.CONNECTED, rtt=0.01), None),
    ],
)
def test_the_count_changes_as_the_time_left_crosses_a_second(state: ConnectionState, change: float | None) -> None:
    assert next_change(state, now=100.0) == pytest.approx(change)


def test_status_words_while_the_local_server_starts_and_after_it_did_not() -> None:
    assert describe_local_start(LocalStart.STARTING) == ("● starting local server", "warning")
    assert describe_local_start(LocalStart.STARTING, plain=True) == ("[starting local server]", "warning")
    assert describe_local_start(LocalStart.FAILED) == ("● offline: local server not started", "error")
    assert describe_local_start(LocalStart.FAILED, plain=True) == ("[offline: local server not started]", "error")


@pytest.mark.parametrize(
    ("environ", "plain"),
    [
        ({"LANG": "en_US.UTF-8", "TERM": "xterm-256color"}, False),
        ({"LC_ALL": "C.utf8", "TERM": "xterm"}, False),
        ({"LANG": "en_US.UTF-8", "NO_COLOR": "1"}, True),
        ({"LANG": "en_US.UTF-8", "TERM": "dumb"}, True),
        ({"LANG": "en_US.ISO-8859-1"}, True),
        ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, True),
        ({}, True),
    ],
)
def test_plain_text_wanted(environ: dict[str, str], plain: bool) -> None:
    assert plain_text_wanted(environ) is plain


@pytest.mark.parametrize(
    ("environ", "ascii_only", "colour"),
    [
        ({"LANG": "en_US.UTF-8", "TERM": "xterm-256color"}, False, True),
        ({"LANG": "en_US.UTF-8", "NO_COLOR": "1"}, False, True),  # colour is Textual's to drop
        ({"LANG": "en_US.UTF-8", "TERM": "dumb"}, True, False),
        ({"LANG": "en_US.UTF-8", "TERM": "linux"}, True, True),  # the console font lacks the glyphs
        ({"LANG": "C", "TERM": "xterm"}, True, True),
        ({}, True, True),
    ],
)
def test_ascii_only_and_colour_wanted(environ: dict[str, str], ascii_only: bool, colour: bool) -> None:
    assert (ascii_only_wanted(environ), colour_wanted(environ)) == (ascii_only, colour)
    if ascii_only:
        assert plain_text_wanted(environ)  # the dot's symbol is not ASCII: words


def test_every_character_becomes_ascii_of_the_same_width() -> None:
    from rich.cells import cell_len
    from rich.segment import Segment
    from textual.color import Color

    drawn = "╭─ Message ─╮│▕▎▌▂█…⏎●▸•é中😀\u0301→"
    [segment] = AsciiOnly().apply([Segment(drawn)], Color(0, 0, 0))
    assert segment.text.isascii() and cell_len(segment.text) == cell_len(drawn)
    assert segment.text == "+- Message -+||||##.<*>*e????>"  # the combining accent takes no cell
    assert [stand_in(c) for c in "┼├┄┆"] == ["+", "+", "-", "|"]
    assert ascii_key_display("⏎") == "enter" and ascii_key_display("^↑") == "^up"


def test_osc52_plain_and_in_tmux_plain_then_wrapped() -> None:
    text = "print('héllo')\n"
    payload = base64.b64encode(text.encode()).decode()
    assert osc52_sequence(text) == f"\x1b]52;c;{payload}\a"
    wrapped = osc52_sequence(text, tmux=True)
    assert wrapped == f"\x1b]52;c;{payload}\a\x1bPtmux;\x1b\x1b]52;c;{payload}\a\x1b\\"


def test_settings_identity() -> None:
    claims = base64.urlsafe_b64encode(b'{"sub":"alice","exp":1}').decode().rstrip("=")
    token = f"h.{claims}.s"
    assert AppSettings(url="ws://chat.example:5001/ws", token=token).identity == "alice@chat.example:5001"
    assert AppSettings(url="wss://chat.example/ws", token=token).identity == "alice@chat.example"
    assert AppSettings(url="ws://[::1]:5001/ws", token=token).identity == "alice@[::1]:5001"
    # A token that is not a JWT names nobody: the header says where, not "?@".
    assert AppSettings(url="ws://chat.example:5001/ws", token="not-a-jwt").identity == "chat.example:5001"
    local = AppSettings(url="ws://127.0.0.1:4000/ws", token=token, server_label="local · demo model")
    assert local.identity == "local · demo model"


def test_advice_for_an_unreachable_server_says_it_keeps_trying() -> None:
    state = ConnectionState(
        Status.DISCONNECTED,
        reason="server unreachable at ws://h:1/ws: connection refused",
        problem=Problem.UNREACHABLE,
        last_error="connection refused",
    )
    advice = advise_stopped(state, "ws://h:1/ws", "f9")
    assert advice is not None and advice.title == "Server unreachable" and advice.severity == "warning"
    assert advice.message.startswith("No connection to ws://h:1/ws: connection refused. The app keeps trying")
    assert "keeps trying" in advice.message and "press f9 to try now" in advice.message
    assert "nothing you typed is lost" in advice.message


def test_advice_goes_by_the_kind_of_problem_not_by_the_words() -> None:
    # The words of a wrong address hold "token" (a masked ?token=): the kind decides, not a substring.
    wrong = ConnectionState(
        Status.DISCONNECTED,
        reason="no WebSocket endpoint at ws://h:1/wss?token=[redacted] (HTTP 404): check the path, usually /ws",
        problem=Problem.NO_WEBSOCKET,
    )
    advice = advise_stopped(wrong, "ws://h:1/wss?token=[redacted]", "f9")
    assert advice is not None and advice.title == "Wrong server address" and advice.severity == "error"
    assert "check the path, usually /ws. Not tried again" in advice.message and "press f9" in advice.message
    refused = ConnectionState(Status.DISCONNECTED, reason="auth refused: token expired", problem=Problem.TOKEN_REFUSED)
    signed_out = advise_stopped(refused, "wss://chat.example/ws", "f9")
    assert signed_out is not None and signed_out.title == "Signed out"
    assert "mfu-chat login --server wss://chat.example/ws" in signed_out.message
    assert "--server URL" not in signed_out.message
    closed = ConnectionState(Status.DISCONNECTED, reason="closed by user", problem=Problem.CLOSED)
    assert advise_stopped(closed, "ws://h:1/ws", "f9") is None


def test_export_writes_markdown_without_overwriting(tmp_path: Path) -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    detail = ChatDetail(
        chat=ChatSummary(id="c1", title="Sorting / lists", updated_at=when, model_id="demo"),
        messages=[
            StoredMessage(id="m1", role="user", content="How?", created_at=when),
            StoredMessage(id="m2", role="assistant", content="Use `sorted`.\n", created_at=when, status="cancelled"),
        ],
    )
    local = when.astimezone().strftime("%Y-%m-%d %H:%M %z")
    # Who wrote what is a bold line, never a heading: the answer's own headings cannot collide with it.
    assert chat_markdown(detail, when) == (
        f"# Sorting / lists\n\nExported {local} · model demo · 2 messages\n\n"
        f"---\n\n**You** · {local}\n\nHow?\n\n"
        f"---\n\n**Assistant** · demo · {local}\n\nUse `sorted`.\n\n*(cancelled)*\n"
    )
    first = export_chat(detail, tmp_path)
    second = export_chat(detail, tmp_path)
    assert first.name == "sorting-lists.md"
    assert second.name == "sorting-lists-2.md"
    assert first.read_text() == second.read_text()
    assert first.read_text().startswith("# Sorting / lists\n\nExported ")


@pytest.mark.parametrize(
    ("status", "finish_reason", "note"),
    [
        ("complete", "stop", None),
        ("complete", "length", "*(cut off: the answer reached the length limit)*"),
        ("error", "interrupted", "*(interrupted: the server stopped before the end)*"),
        ("error", None, "*(failed: the model did not answer)*"),
        ("complete", "content_filter", "*(stopped by the model server's content filter)*"),
        ("streaming", None, "*(still being written)*"),
    ],
)
def test_an_exported_answer_says_how_it_ended_as_the_app_does(status, finish_reason, note) -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    answer = StoredMessage(
        id="m2", role="assistant", content="Part of it", created_at=when, status=status, finish_reason=finish_reason
    )
    detail = ChatDetail(chat=ChatSummary(id="c1", title="t", updated_at=when), messages=[answer])
    assert chat_markdown(detail, when).endswith("\n\nPart of it\n" + (f"\n{note}\n" if note else ""))


def test_chat_ages_fit_six_cells() -> None:
    from mfu_tui.tui.widgets.chat_list import chat_age

    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    ages = [chat_age(now - timedelta(seconds=s), now) for s in (5, 300, 3 * 3600, 6 * 86400)]
    assert ages == ["now", "5m", "3h", "6d"]
    assert chat_age(now - timedelta(days=40), now) == (now - timedelta(days=40)).astimezone().strftime("%d %b")
    assert chat_age(datetime(2024, 3, 2, 12, tzinfo=UTC), now) == "2024-03"
