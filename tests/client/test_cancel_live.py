"""A cancel swallowed by a connection that died unnoticed is sent again after the reconnect."""

from mfu_tui.client import Status
from mfu_tui.protocol import Ack, Cancelled, Chunk, Complete
from tests.support.proxy import FaultProxy
from tests.support.server import running_server


async def test_a_cancel_lost_with_a_dead_connection_is_sent_again(tmp_path, make_client):
    async with (
        running_server(tmp_path, demo_words=3000, demo_delay_ms=5) as srv,
        FaultProxy(srv.port) as proxy,
    ):
        client, recorder = make_client(proxy.url("/ws"), srv.token(), ping_interval=0.5, ping_timeout=1.0)
        await client.connect()
        await client.send_message(None, "a long answer, please")
        await recorder.wait_for(lambda: len(recorder.of_type(Chunk)) >= 3)
        (ack,) = recorder.of_type(Ack)
        proxy.drop()  # from now on the network loses everything, and nobody knows yet
        await client.cancel(ack.chat_id)  # written into the dead connection: lost
        await recorder.wait_status(Status.RECONNECTING)  # the heartbeat gives up on it
        proxy.pass_through()
        await recorder.wait_for(lambda: recorder.of_type(Cancelled) or recorder.of_type(Complete))
    # Without the resend the answer would have run to its end (Complete, "stop").
    assert recorder.of_type(Complete) == []
    (cancelled,) = recorder.of_type(Cancelled)
    assert cancelled.message_id == ack.reply_id
    seqs = [chunk.seq for chunk in recorder.of_type(Chunk)]
    assert seqs == list(range(1, cancelled.seq + 1))
