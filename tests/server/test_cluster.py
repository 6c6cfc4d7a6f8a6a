"""Several nodes on one PostgreSQL and one Redis, behind nginx: events, streams, cancel and sends cross nodes.

Each test gets its own cluster (``cluster`` fixture: three ``mfu-chat serve``
processes, a fresh database, its own Redis, nginx in front). A test that
must know which node a connection is on connects to that node's port;
a test of the load balancer goes through ``cluster.url``.
"""

from __future__ import annotations

from mfu_tui.protocol import Complete
from mfu_tui.server.providers.demo import demo_answer
from tests.server.peer import peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.cluster import DEMO_WORDS


async def test_an_answer_streams_whole_through_the_load_balancer(cluster):
    async with peer(cluster.url, cluster.token()) as alice:
        ack = await send_message(alice, "What is a monad?")
        chunks, end = await alice.stream(ack.reply_id)
        detail = await get_chat(alice, ack.chat_id)
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert isinstance(end, Complete) and end.finish_reason == "stop" and end.seq == len(chunks)
    assert text_of(chunks) == demo_answer("What is a monad?", DEMO_WORDS) == detail.messages[1].content
