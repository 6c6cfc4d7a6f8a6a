"""Reasoning shown apart: a collapsed "Thinking…" line above the answer, t to expand it, left out of copy and export."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mfu_tui.protocol import ChatDetail, ChatSummary, Chunk, StoredMessage
from mfu_tui.server.providers.demo import demo_answer, demo_reasoning
from mfu_tui.tui.export import chat_markdown
from mfu_tui.tui.widgets.reasoning_section import ReasoningSection
from tests.support.server import RunningServer
from tests.tui.conftest import WORDS
from tests.tui.helpers import FrameWaiter, make_app, ready, settle, type_text
from tests.tui.test_flows import SIZE, ask, until

QUESTION = "think: why is the sky blue?"


def words(text: str) -> int:
    return len(text.split())


async def test_the_reasoning_is_one_collapsed_line_above_the_answer_and_t_expands_it(
    server: RunningServer, tmp_path: Path
) -> None:
    thought = demo_reasoning(QUESTION)
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, QUESTION)
        answer = app.conversation.views[-1]
        section = answer.reasoning
        collapsed = (section.display, str(section.render()), answer.text)
        app.conversation.focus()
        await pilot.press("up", "t")
        await settle(app, pilot)
        expanded = str(section.render())
        await pilot.press("c")
        copied = app.clipboard
        await pilot.press("t")
        await settle(app, pilot)
        again = str(section.render())
        # The question has no reasoning: t says so and changes nothing.
        await pilot.press("up", "t")
        question_sections = list(app.conversation.views[-2].query(ReasoningSection))
        notified = [notice.message for notice in app._notifications]
    assert collapsed == (True, f"▸ Thought: {words(thought)} words", demo_answer(QUESTION, WORDS))
    assert expanded == f"▾ Thought: {words(thought)} words\n{thought}"
    assert copied == demo_answer(QUESTION, WORDS)  # the answer alone
    assert again == collapsed[1]
    assert question_sections == []
    assert notified[-1] == "This message has no reasoning to show."


async def test_the_line_counts_words_as_the_reasoning_streams(slow_server: RunningServer, tmp_path: Path) -> None:
    app = make_app(slow_server.url, slow_server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        started = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.kind == "reasoning" and f.seq >= 3)
        await type_text(pilot, QUESTION)
        await pilot.press("enter")
        await started.wait()
        await until(pilot, lambda: app.conversation.views[-1].reasoning.display, "the reasoning shown")
        section = app.conversation.views[-1].reasoning

        def counted() -> int:
            """The words the line counts (0 before it counts any)."""
            said = str(section.render()).split()
            return int(said[2]) if len(said) > 2 and said[2].isdigit() else 0

        # The chunks come to the client first: the app shows them at most 20 times a second (StreamPace).
        await until(pilot, lambda: counted() >= 3, "three words counted")
        running = str(section.render())
        await until(pilot, lambda: app.conversation.views[-1].text, "the answer started")
        await pilot.press("escape")
        await until(pilot, lambda: not section.running, "the answer stopped")
    count = int(running.split()[2])
    assert running.startswith("▸ Thinking… ") and 3 <= count < words(demo_reasoning(QUESTION))


def test_export_leaves_the_reasoning_out_unless_asked_for_it() -> None:
    when = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    chat = ChatSummary(id="c1", title="Sky", updated_at=when, model_id="demo", message_count=2)
    detail = ChatDetail(
        chat=chat,
        messages=[
            StoredMessage(id="m1", role="user", content="Why blue?", created_at=when),
            StoredMessage(
                id="m2", role="assistant", content="Rayleigh.", created_at=when, reasoning="Short waves.\nScatter."
            ),
        ],
    )
    plain = chat_markdown(detail, when)
    with_reasoning = chat_markdown(detail, when, reasoning=True)
    assert "Short waves" not in plain and "Rayleigh." in plain
    assert "> *Thinking:*\n>\n> Short waves.\n> Scatter.\n\nRayleigh." in with_reasoning
