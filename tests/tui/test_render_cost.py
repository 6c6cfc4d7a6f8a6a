"""What keeps a streamed answer cheap to show: the app's styles, its segments, its imports.

These assert the behaviour the render bench (``bench/render.py``,
``bench/startup.py``) depends on, never a time.
"""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from mfu_tui.protocol import Chunk, Complete
from mfu_tui.tui import client_events, stream_pace
from mfu_tui.tui.app import COLLECT_YOUNG_EVERY
from mfu_tui.tui.client_events import ClientEvents
from mfu_tui.tui.stream_split import Part
from mfu_tui.tui.widgets.answer_body import AnswerBody
from tests.support.server import RunningServer, running_server
from tests.tui.helpers import FrameWaiter, frame_of, make_app, ready, settle, until
from tests.tui.scenes import ask, ask_answered

#: Pseudo-classes that make Textual restyle every sibling (and its subtree) when a widget is mounted.
ORDER_DEPENDENT = {"first-child", "last-child", "first-of-type", "last-of-type", "odd", "even", "empty"}


async def test_no_style_rule_depends_on_a_widgets_place_among_its_siblings(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token("alice"), tmp_path)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await ask_answered(app, pilot, "Some Markdown please")
        await settle(app, pilot)
        assert len(app.conversation.views) == 2  # the answer's widgets (and so their styles) are in
        # Every stylesheet the app has loaded: app.tcss and each widget's DEFAULT_CSS, Textual's included.
        structural = [
            f"{rule.selectors}: {sorted(rule.pseudo_classes & ORDER_DEPENDENT)}"
            for rule in app.stylesheet.rules
            if rule.pseudo_classes & ORDER_DEPENDENT
        ]
        assert structural == []


#: Run in a fresh interpreter: the app's first frame, and which of the modules it does not need were imported by then.
FIRST_SCREEN = """
import asyncio, gc, json, sys
from pathlib import Path
from mfu_tui.client import ClientSettings
from mfu_tui.tui import AppSettings, ChatApp
from mfu_tui.tui.keys import keymap_problem

NOT_NEEDED = [
    # An answer's Markdown widgets: imported with the first assistant message.
    "textual.widgets._markdown", "markdown_it", "rich.markdown", "mfu_tui.tui.widgets.markdown_segments",
    # The client with its socket: made once the first frame is drawn.
    "mfu_tui.client.client", "mfu_tui.client.dial", "mfu_tui.client.read_cache", "websockets",
    "mfu_tui.client.session", "mfu_tui.client.outbox",
    # The dialogs (help, search, sign in...) and what only they use: imported where they open.
    "mfu_tui.tui.screens", "textual.widgets._data_table",
    # Why a frame was refused: imported when one is.
    "mfu_tui.protocol.explain",
]

class FirstFrame(ChatApp):
    CSS_PATH = str(Path(sys.modules[ChatApp.__module__].__file__).with_name("app.tcss"))  # not beside this file

    # Textual's Ready follows the first frame; this class's handler runs before ChatApp's.
    def on_ready(self):
        shown = self.screen.query_one("#sidebar-title").render()
        imported = [name for name in NOT_NEEDED if name in sys.modules]
        self.seen = {"shown": str(shown), "imported": imported, "collecting": gc.isenabled()}

async def main():
    gc.disable()  # as mfu-chat does until the app loads (cli._run_app)
    assert keymap_problem(ChatApp, {}) is None  # what mfu-chat checks before it runs the app, with no keymap
    home = Path(sys.argv[1])
    client = ClientSettings(data_dir=home / "data")
    app = FirstFrame(AppSettings(url=sys.argv[2], token="t", plain=False, client=client, export_dir=home))
    async with app.run_test() as pilot:
        await pilot.pause()
        started = "mfu_tui.client.client" in sys.modules  # then ChatApp's own Ready made the client
    print(json.dumps({**app.seen, "client_after": started}))

asyncio.run(main())
"""


def test_the_first_frame_does_not_import_the_markdown_widgets_or_the_client(tmp_path: Path) -> None:
    # A port nothing listens on: the first screen is drawn before the client connects.
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{free.getsockname()[1]}/ws"
    script = tmp_path / "first_frame.py"  # a file: Textual looks up where an App subclass is defined
    script.write_text(FIRST_SCREEN)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), url], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"shown": "Chats", "imported": [], "collecting": True, "client_after": True}


def test_a_frozen_part_parsed_by_the_shared_parser_draws_what_richs_markdown_draws() -> None:
    from rich.console import Console
    from rich.markdown import Markdown as RichMarkdown

    from mfu_tui.tui.widgets.markdown_segments import FrozenRichMarkdown

    text = (
        "# Title\n\nA paragraph with `code`, **bold**, ~~struck~~ and [a link](https://example.com).\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted *words*\n\n1. one\n2. two\n\n"
        "```python\ndef f(x):\n    return x  # a comment long enough to wrap at the narrow width\n```\n"
    )
    for width in (30, 80, 120):
        console = Console(width=width, color_system="truecolor", force_terminal=True)
        ours = console.render_lines(FrozenRichMarkdown(Part(text)), console.options)
        theirs = console.render_lines(RichMarkdown(text, code_theme="monokai"), console.options)
        assert ours == theirs
        drawn = "".join(segment.text for line in ours for segment in line)
        assert "struck" in drawn and "~~" not in drawn and "|---" not in drawn  # strikethrough and tables are on


# Each example draws a part twice with Rich (about 2 ms): the ci profile's 10,000 would take 20 s.
@settings(max_examples=min(settings.default.max_examples, 2000))
@given(
    # Words, tabs, line endings, wide and combining characters, a control character: what changes a line's width.
    code=st.lists(
        st.sampled_from(["a", "b", " ", "\t", "\n", "\r", "字", "😀", "\x07", "\ufeff", "é", "\u0301", "def ", "#"])
    ).map("".join),
    lexer=st.sampled_from(["python", "", "nonexistent"]),
    container=st.sampled_from(["{fence}", "- item\n\n  {fence}", "> {fence}"]),
    width=st.integers(min_value=1, max_value=130),
    # A code block cut from the part before, into the next, or both: drawn without the blank line at a cut.
    opens=st.sampled_from([None, "```python"]),
    closes=st.sampled_from([None, "```python"]),
)
def test_a_answer_body_height_is_found_as_drawn_without_highlighting_its_code(
    code: str, lexer: str, container: str, width: int, opens: str | None, closes: str | None
) -> None:
    from rich.console import Console

    from mfu_tui.tui.widgets.markdown_segments import FrozenRichMarkdown, HeightMarkdown

    indent = "  " if container.startswith("-") else "> " if container.startswith(">") else ""
    fence = f"```{lexer}\n{code}\n```".replace("\n", f"\n{indent}")
    text = "A paragraph before the code.\n\n" + container.format(fence=fence) + "\n\nAnd one after.\n"
    console = Console(width=width, color_system="truecolor", force_terminal=True)
    if closes:
        text += f"{closes}\nstill code\n"  # the block left open at the part's end
    drawn = FrozenRichMarkdown(Part(text, opens, closes))
    measured = HeightMarkdown(Part(text, opens, closes))
    assert len(console.render_lines(measured, console.options)) == len(console.render_lines(drawn, console.options))


# Each example draws the code twice with Rich: a few milliseconds.
@settings(max_examples=min(settings.default.max_examples, 2000))
@given(
    # Code lines of any width (tabs, wide and combining characters, control characters), blank lines and none.
    code=st.lists(
        st.sampled_from(
            ["a", "bb ", " ", "\t", "\n", "\n\n", "\r", "字", "😀", "\x07", "é", "\u0301", "def f(x): ", "# c"]
        )
    ).map("".join),
    lexer=st.sampled_from(["python", "text", "nonexistent"]),
    # Monokai is the app's; ansi_dark has a transparent background; github-dark another background.
    theme=st.sampled_from(["monokai", "ansi_dark", "github-dark"]),
    width=st.integers(min_value=1, max_value=130),
    padding=st.sampled_from([(1, 1, 1, 1), (0, 1, 1, 1), (1, 1, 0, 1), (0, 1, 0, 1), (0, 0, 0, 0)]),
)
def test_a_code_block_draws_the_cells_richs_syntax_draws(
    code: str, lexer: str, theme: str, width: int, padding: tuple[int, int, int, int]
) -> None:
    from rich.console import Console
    from rich.segment import Segment
    from rich.syntax import Syntax

    from mfu_tui.tui.widgets.markdown_segments import WrappingSyntax

    console = Console(width=width, color_system="truecolor", force_terminal=True)

    def cells(syntax: Syntax) -> list[list[Segment]]:
        # The cells drawn: empty segments left out (Rich leaves one on an empty line), adjacent ones of a style joined.
        lines = console.render_lines(syntax, console.options, pad=False)
        return [list(Segment.simplify(segment for segment in line if segment.text)) for line in lines]

    ours = WrappingSyntax(code, lexer, theme=theme, word_wrap=True, padding=padding)
    theirs = Syntax(code, lexer, theme=theme, word_wrap=True, padding=padding)
    assert cells(ours) == cells(theirs)


def test_a_code_block_draws_the_lines_that_fit_from_pygments_tokens_without_richs_text_or_padding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rich.console import Console
    from rich.padding import Padding
    from rich.segment import Segment
    from rich.text import Text

    from mfu_tui.tui.widgets.markdown_segments import FrozenRichMarkdown

    # Rich's highlighted Text (a span a token, divided into a Text a line, each rendered) cost what Pygments did;
    # its Padding around the code split the lines drawn again and styled each segment again.
    drawn_by_rich: list[str] = []
    render, pad = Text.render, Padding.__rich_console__

    def rendered(text: Text, *args: Any, **kwargs: Any) -> Iterable[Segment]:
        drawn_by_rich.append(text.plain)
        return render(text, *args, **kwargs)

    def padded(padding: Padding, *args: Any, **kwargs: Any) -> Iterable[Segment]:
        drawn_by_rich.append("padding")
        return pad(padding, *args, **kwargs)

    monkeypatch.setattr(Text, "render", rendered)
    monkeypatch.setattr(Padding, "__rich_console__", padded)
    code = 'def f(x):\n    """Twice x."""\n    return 2 * x  # a comment\n'
    console = Console(width=80, color_system="truecolor", force_terminal=True)
    lines = console.render_lines(FrozenRichMarkdown(Part(f"```python\n{code}```\n")), console.options)
    drawn = ["".join(segment.text for segment in line)[1:].rstrip() for line in lines]  # the padding left out
    assert drawn == ["", *code.splitlines(), ""]
    assert drawn_by_rich == []


async def test_a_code_block_streamed_past_the_view_is_highlighted_when_scrolled_back(tmp_path: Path) -> None:
    async with running_server(tmp_path, demo_words=3000, demo_delay_ms=0) as server:
        app = make_app(server.url, server.token("alice"), tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(app, pilot)
            await ask_answered(app, pilot, "Some code please")
            await settle(app, pilot)
            conversation = app.conversation
            (answer,) = [view for view in conversation.views if view.role == "assistant"]
            frozen = answer.query_one(AnswerBody)
            assert "```python" in "".join(frozen.sources[:2]) and frozen.region.y < conversation.region.y
            # The parts that streamed past the view have their heights measured once the app is idle.
            await until(pilot, lambda: not frozen.estimated)
            laid_out = (conversation.virtual_size, frozen.size)
            conversation.focus()
            await pilot.press("home")
            await settle(app, pilot)
            # The code line is in view, drawn with the colours of its tokens (name, number, comment).
            (code_line,) = [
                line
                for line in frozen.render_lines(Region(0, 0, *frozen.size))
                if line.text.lstrip().startswith("print(")
            ]
            assert line_colours(code_line) >= 3
            assert frozen.region.overlaps(conversation.region)
            # Drawn in full, every part takes the lines it was measured at: nothing moved.
            frozen.refresh(layout=True)
            await settle(app, pilot)
            assert (conversation.virtual_size, frozen.size) == laid_out


def line_colours(strip: Strip) -> int:
    """How many foreground colours the visible characters of ``strip`` are drawn in."""
    return len({segment.style.color for segment in strip if segment.text.strip() and segment.style})


async def test_the_footer_mounts_and_removes_only_the_keys_that_come_and_go(
    server: RunningServer, tmp_path: Path
) -> None:
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    from mfu_tui.tui.widgets.keys_footer import KeysFooter

    def shown(keys: Iterable[Widget]) -> list[tuple[str, str, str]]:
        return [(key.key_display, key.description, key.action) for key in keys if isinstance(key, FooterKey)]

    app = make_app(server.url, server.token("alice"), tmp_path)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        footer = app.query_one(KeysFooter)
        keys = list(footer.query(FooterKey))
        app.refresh_bindings()  # as a focus change or an answer's start does, the same keys shown
        await pilot.pause()
        same = list(footer.query(FooterKey))
        app.generating = "an-answer"  # esc now stops it: a key more, first
        await pilot.pause()
        during = list(footer.query(FooterKey))
        app.generating = None
        await pilot.pause()
        after = list(footer.query(FooterKey))
        app.generating = "another"
        app.conversation.focus()  # the composer's keys go, the conversation's come, in the middle
        await pilot.pause()
        changed = shown(footer.query(FooterKey))
        footer.call_later(Footer.recompose, footer)  # Textual's own: every key composed again
        await pilot.pause()
        composed = shown(footer.query(FooterKey))
    assert keys and same == keys
    assert during[0].action == "cancel" and during[1:] == keys
    assert after == keys
    assert changed == composed and changed[0][2] == "cancel" and changed[1:] != shown(keys)


async def test_the_collector_looks_for_young_cycles_less_often_while_the_app_runs(
    server: RunningServer, tmp_path: Path
) -> None:
    before = gc.get_threshold()
    app = make_app(server.url, server.token("alice"), tmp_path)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        during = gc.get_threshold()
    assert during == (COLLECT_YOUNG_EVERY, *before[1:]) and COLLECT_YOUNG_EVERY > before[0]
    assert gc.get_threshold() == before  # another app, or the rest of the process, finds it as it was


WARM_UP = """
import json, sys
from pygments.lexers.python import PythonLexer
from mfu_tui.tui.warm_up import warm_up
before = ["_tokens" in PythonLexer.__dict__, "mfu_tui.tui.widgets.answer_body" in sys.modules]
warm_up()
after = ["_tokens" in PythonLexer.__dict__, "mfu_tui.tui.widgets.answer_body" in sys.modules]
print(json.dumps([before, after]))
"""


def test_the_warm_up_imports_the_answer_widget_and_builds_the_lexers() -> None:
    done = subprocess.run([sys.executable, "-c", WARM_UP], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == [[False, False], [True, True]]


async def test_the_app_warms_up_in_a_thread_once_ready(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token("alice"), tmp_path)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        thread = app.warm_up
        thread.join(60)
    assert thread.daemon and not thread.is_alive()


async def test_the_footer_shows_the_keys_of_a_selected_message_as_soon_as_one_is_selected(
    server: RunningServer, tmp_path: Path
) -> None:
    from textual.widgets._footer import FooterKey

    app = make_app(server.url, server.token("alice"), tmp_path)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await ask_answered(app, pilot, "Hello")
        await settle(app, pilot)
        app.conversation.focus()
        await pilot.pause()
        before = {key.action for key in app.query(FooterKey)}
        await pilot.press("up")  # selects the last message
        await pilot.pause()
        selected = {key.action for key in app.query(FooterKey)}
        app.conversation.selected = None
        await pilot.pause()
        after = {key.action for key in app.query(FooterKey)}
    assert "copy_message" not in before and "copy_message" not in after
    assert {"copy_message", "copy_code", "details"} <= selected


async def test_chunks_that_come_within_a_frame_of_the_last_shown_wait_and_are_shown_together_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_pace, "STREAM_FRAME", 3600.0)  # after the first chunks, all wait: until the end
    async with running_server(tmp_path, demo_words=60, demo_delay_ms=20) as server:
        app = make_app(server.url, server.token("alice"), tmp_path)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            streamed: list[str] = []
            # The answer as shown (text, last chunk) before its end: looked at as each chunk reaches the client
            # and after each message the app handles, its chunks' batches among them, until it has handled the
            # end. Looked at from the test's steps instead, on a busy machine the answer had ended first.
            seen: list[tuple[str, int]] = []
            end_handled = False

            def look() -> None:
                answers = [view for view in app.conversation.views if view.role == "assistant"]
                if answers and answers[0].text and not end_handled:
                    seen.append((answers[0].text, answers[0].last_seq))

            def on_frame(frame: Any) -> None:
                if isinstance(frame, Chunk):
                    streamed.append(frame.content)
                    look()

            def on_handled(message: Message) -> None:
                nonlocal end_handled
                end_handled = end_handled or isinstance(message, ClientEvents.AnswerEnded)
                look()

            unsubscribe = app.client.on_message(on_frame)
            app.message_signal.subscribe(app, on_handled, immediate=True)
            ended = FrameWaiter(app.client, frame_of(Complete))
            await ask(app, pilot, "Tell me more")
            await ended.wait()
            await until(pilot, lambda: end_handled)
            (answer,) = [view for view in app.conversation.views if view.role == "assistant"]
            app.message_signal.unsubscribe(app)
            unsubscribe()
    assert seen, "nothing of the answer was shown before its end"
    first, shown_seq = seen[0]
    assert first and {text for text, _ in seen} == {first}  # the chunks after the first ones waited
    assert len(streamed) >= shown_seq + 5  # five of them at least, all come before the end
    assert answer.text == "".join(streamed)  # all of them at the end, once each, in order


async def test_chunks_that_come_while_a_full_batch_waits_are_shown_without_waiting_for_the_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_pace, "STREAM_FRAME", 3600.0)  # a held batch would wait until the end
    monkeypatch.setattr(client_events, "BATCH_CHARS", 100)  # full after a few chunks
    async with running_server(tmp_path, demo_words=200, demo_delay_ms=5) as server:
        app = make_app(server.url, server.token("alice"), tmp_path)
        async with app.run_test() as pilot:
            await ready(app, pilot)
            # The answer's length as shown before its end, looked at after each message the app handles (read
            # at the test's pace instead, on a busy machine it could be the whole answer, shown at its end).
            shown: list[int] = []
            end_handled = False

            def on_handled(message: Message) -> None:
                nonlocal end_handled
                end_handled = end_handled or isinstance(message, ClientEvents.AnswerEnded)
                answers = [view for view in app.conversation.views if view.role == "assistant"]
                if answers and not end_handled:
                    shown.append(len(answers[0].text))

            app.message_signal.subscribe(app, on_handled, immediate=True)
            await ask(app, pilot, "Tell me more")
            await until(pilot, lambda: end_handled)
            app.message_signal.unsubscribe(app)
    # Batch after batch shown as the stream goes (each full one as the next chunk comes), though a batch
    # alone waits an hour for its frame.
    assert shown and max(shown) > 300


async def test_an_answer_repaints_what_changed_not_the_whole_screen(server: RunningServer, tmp_path: Path) -> None:
    # The app's state (the open chat, the answer being written...) was kept in reactives that repaint: each
    # answer's start and end repainted every line of the screen, on top of what changed.
    app = make_app(server.url, server.token("alice"), tmp_path)
    async with app.run_test() as pilot:
        await ready(app, pilot)
        await ask_answered(app, pilot, "A first question")  # the conversation and the chat list are drawn
        await settle(app, pilot)
        compositor = app.screen._compositor  # Textual's: what a frame sends to the terminal
        render_full_update = compositor.render_full_update
        full_updates = 0

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal full_updates
            full_updates += 1
            return render_full_update(*args, **kwargs)

        compositor.render_full_update = counted  # type: ignore[method-assign]
        await ask_answered(app, pilot, "A second question")
        await settle(app, pilot)
        assert app.conversation.views[-1].status == "complete"
    assert full_updates == 0
