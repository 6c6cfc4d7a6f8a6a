"""How an answer ended, under it: a content filter and a tool call are said as such, live and reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server import dialects
from tests.server.fake_openai import FakeOpenAI
from tests.server.test_openai_provider import openai_settings
from tests.support.server import running_server
from tests.tui.helpers import make_app, ready, settle
from tests.tui.test_flows import SIZE, ask


@pytest.mark.parametrize(
    ("body", "status", "note"),
    [
        (dialects.OPENROUTER_FILTERED, "filtered", "stopped by the model server's content filter"),
        (dialects.VLLM_TOOL_CALL, "tool-call", "ended asking to call a tool, which this app does not offer"),
    ],
    ids=["content_filter", "tool_calls"],
)
async def test_an_ending_other_than_stop_is_said_under_the_answer(tmp_path: Path, body, status, note) -> None:
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = dialects.answer(body)
        app = make_app(srv.url, srv.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            complete = await ask(app, pilot, "say hello")
            live = app.conversation.views[-1]
            assert (live.status, live.query_one(".note").render().plain) == (status, note)
            assert live.query_one(".note").display
            # Opened again, from the server's page: the stored finish reason says the same.
            app.load_chat(complete.chat_id)
            await settle(app, pilot)
            reloaded = app.conversation.views[-1]
            assert reloaded is not live
            assert (reloaded.status, reloaded.query_one(".note").render().plain) == (status, note)


async def test_a_note_wider_than_the_pane_wraps_instead_of_being_cut(tmp_path: Path) -> None:
    note = "ended asking to call a tool, which this app does not offer"
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = dialects.answer(dialects.VLLM_TOOL_CALL)
        app = make_app(srv.url, srv.token(), tmp_path)
        async with app.run_test(size=(40, 30)) as pilot:
            await ready(app, pilot)
            await ask(app, pilot, "say hello")
            shown = app.conversation.views[-1].query_one(".note")
            assert shown.size.width < len(note) and shown.size.height > 1
            lines = [strip.text for strip in shown.render_lines(shown.region.reset_offset)]
            assert " ".join(" ".join(lines).split()) == note
