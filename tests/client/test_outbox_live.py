"""The outbox against the real server: offline messages, and a client process killed with one pending."""

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mfu_tui.client import ClientError, RequestError, Status
from mfu_tui.client.outbox import Outbox, token_subject
from mfu_tui.protocol import Ack, ChatParams, ChatSettings, Complete
from tests.server.fake_openai import FakeOpenAI
from tests.support.disk_full import fill_disk, free_disk
from tests.support.proxy import FaultProxy
from tests.support.server import running_server

REPO = Path(__file__).resolve().parents[2]


def acked(events, client_message_id: str) -> bool:
    return any(ack.client_message_id == client_message_id for ack in events.of_type(Ack))


def answered(events, count: int) -> bool:
    return len(events.of_type(Complete)) >= count


async def test_messages_sent_offline_arrive_once_in_order(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=5) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        first = await client.send_message(None, "first")
        await events.wait_for(lambda: acked(events, first) and answered(events, 1))
        chat_id = events.of_type(Ack)[0].chat_id

        proxy.reset()  # the network goes down, and stays down until pass_through()
        await events.wait_status(Status.RECONNECTING)
        offline = [await client.send_message(chat_id, f"offline {n}") for n in range(3)]
        assert [entry.content for entry in client.outbox.pending()] == ["offline 0", "offline 1", "offline 2"]
        proxy.pass_through()

        await events.wait_for(lambda: all(acked(events, cmid) for cmid in offline) and answered(events, 4))
        detail = await client.get_chat(chat_id)
        user_messages = [m.content for m in detail.messages if m.role == "user"]
        assert user_messages == ["first", "offline 0", "offline 1", "offline 2"]
        assert len(client.outbox) == 0


def start_child(url: str, token: str, data_dir: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.client.outbox_child", url, token, str(data_dir), *flags],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def child_says(child: subprocess.Popen[str], line: str | None = None) -> str:
    """Optionally write ``line`` to the child, then read its next output line."""
    if line is not None:
        child.stdin.write(line + "\n")
        child.stdin.flush()
    return (await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)).strip()


@pytest.mark.parametrize("fault", ["never_sent", "ack_lost"])
async def test_a_killed_client_process_sends_its_pending_message_once_after_restart(tmp_path, make_client, fault):
    data_dir = tmp_path / "client-data"
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        token = server.token()
        if fault == "never_sent":
            proxy.reset()  # the child never reaches the server
            child = start_child(proxy.url(), token, data_dir, "--no-wait")
            assert await child_says(child) == "started"
        else:
            child = start_child(proxy.url(), token, data_dir)
            assert await child_says(child) == "connected"
            proxy.blackhole()  # the frame may reach the server, the ack cannot come back
        try:
            client_message_id = await child_says(child, "typed before the crash")
        finally:
            child.kill()
            child.wait()
        proxy.pass_through()

        # The restarted client: same server URL, same account, same data dir.
        client, events = make_client(proxy.url(), token, data_dir=data_dir)
        assert [entry.client_message_id for entry in client.outbox.pending()] == [client_message_id]
        await client.connect()
        await events.wait_for(lambda: acked(events, client_message_id) and answered(events, 1))
        assert len(client.outbox) == 0
        page = await client.list_chats()
        assert len(page.chats) == 1
        detail = await client.get_chat(page.chats[0].id)
        assert [m.content for m in detail.messages if m.role == "user"] == ["typed before the crash"]


async def test_messages_to_a_busy_chat_wait_for_the_answer_without_a_conflict(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=30, demo_delay_ms=1) as server:
        client, events = make_client(server.url, server.token())
        other, others = make_client(server.url, server.token(), data_dir=tmp_path / "other-data")
        await client.connect()
        first = await client.send_message(None, "first")
        await events.wait_for(lambda: acked(events, first))
        chat_id = events.of_type(Ack)[0].chat_id
        # Same chat, while "first" is still being answered: once from this client,
        # once from another client that does not know an answer is running.
        second = await client.send_message(chat_id, "second")
        await other.connect()
        third = await other.send_message(chat_id, "third")
        await events.wait_for(lambda: acked(events, second))
        await others.wait_for(lambda: acked(others, third))
        assert events.errors == [] and others.errors == []
        detail = await client.get_chat(chat_id)
        user_messages = [m.content for m in detail.messages if m.role == "user"]
        assert user_messages[:2] == ["first", "second"] or user_messages[:2] == ["first", "third"]
        assert sorted(user_messages) == ["first", "second", "third"]


async def test_a_message_too_large_for_the_server_is_refused_before_the_outbox(tmp_path, make_client):
    async with running_server(tmp_path) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        with pytest.raises(ClientError) as refused:
            await client.send_message(None, "x" * (64 * 1024))
        assert refused.value.code == "too_large"
        assert len(client.outbox) == 0
        # The connection was not touched: a normal message still goes through.
        client_message_id = await client.send_message(None, "small")
        await events.wait_for(lambda: acked(events, client_message_id))
        assert events.opens == 1


async def test_a_message_the_server_refuses_leaves_the_outbox_and_is_reported(tmp_path, make_client):
    async with running_server(tmp_path) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        client_message_id = await client.send_message("no-such-chat", "hello?")
        await events.wait_for(lambda: any(e.client_message_id for e in events.errors))
        (error,) = [e for e in events.errors if e.client_message_id]
        assert error.code == "not_found" and error.client_message_id == client_message_id
        assert len(client.outbox) == 0


async def test_a_second_client_of_the_account_never_drops_the_first_ones_pending_message(tmp_path, make_client):
    data_dir = tmp_path / "client-data"
    async with running_server(tmp_path, demo_words=5) as server, FaultProxy(server.port) as proxy:
        token = server.token()
        proxy.reset()  # the first client (another terminal) cannot reach the server
        first = start_child(proxy.url(), token, data_dir, "--no-wait")
        try:
            assert await child_says(first) == "started"
            pending = await child_says(first, "typed in the first terminal")
            first.send_signal(signal.SIGSTOP)  # still running, so still holding its journal, but sending nothing
            proxy.pass_through()
            # The second terminal, same account and data dir: its ack empties its own journal only.
            second, events = make_client(proxy.url(), token, data_dir=data_dir)
            await second.connect()
            sent = await second.send_message(None, "typed in the second terminal")
            await events.wait_for(lambda: acked(events, sent))
        finally:
            first.kill()
            first.wait()
        await second.close()
        # The next start sends what the killed terminal had pending.
        third, later = make_client(proxy.url(), token, data_dir=data_dir)
        await third.connect()
        await later.wait_for(lambda: acked(later, pending))
        page = await third.list_chats()
        firsts = [(await third.get_chat(chat.id)).messages[0].content for chat in page.chats]
    assert sorted(firsts) == ["typed in the first terminal", "typed in the second terminal"]


async def test_a_message_sent_after_a_crash_cut_the_journal_survives_the_next_crash(tmp_path, make_client):
    data_dir = tmp_path / "client-data"
    async with running_server(tmp_path, demo_words=5) as server, FaultProxy(server.port) as proxy:
        token = server.token()
        journal = Outbox.for_account(data_dir, proxy.url(), token_subject(token))
        journal.close()
        # What a kill in the middle of a write leaves: a record without its end.
        journal.path.write_bytes(b'{"op":"add","client_message_id":"cut-short","chat_id":null,"con')
        proxy.reset()  # offline: the message stays in the journal
        child = start_child(proxy.url(), token, data_dir, "--no-wait")
        try:
            assert await child_says(child) == "started"
            client_message_id = await child_says(child, "typed after the first crash")
        finally:
            child.kill()
            child.wait()
        proxy.pass_through()

        client, events = make_client(proxy.url(), token, data_dir=data_dir)
        assert [entry.client_message_id for entry in client.outbox.pending()] == [client_message_id]
        await client.connect()
        await events.wait_for(lambda: acked(events, client_message_id))
        page = await client.list_chats()
        assert [(await client.get_chat(chat.id)).messages[0].content for chat in page.chats] == [
            "typed after the first crash"
        ]


async def test_a_message_past_the_users_running_answers_is_kept_and_sent_when_one_ends(tmp_path, make_client):
    async with FakeOpenAI() as fake:
        fake.script.then = "gate"  # every answer runs until the test opens the gate
        settings = {"provider": "openai", "openai_base_url": fake.base_url, "answers_per_user": 3}
        async with running_server(tmp_path, **settings) as server:
            client, events = make_client(server.url, server.token())
            await client.connect()
            sent = [await client.send_message(None, f"question {n}") for n in range(4)]
            await events.wait_for(lambda: events.errors)  # the fourth, while three answers run
            running = len(server.server.generations.running())
            fake.gate.set()
            await events.wait_for(lambda: all(acked(events, cmid) for cmid in sent) and answered(events, 4))
            chats = [ack.chat_id for ack in events.of_type(Ack)]
            details = [await client.get_chat(chat_id) for chat_id in chats]
    [refused] = events.errors
    assert refused.code == "rate_limited" and refused.message.startswith("you have 3 answers running")
    assert refused.client_message_id == sent[3] and running == 3
    assert [detail.messages[0].content for detail in details] == [f"question {n}" for n in range(4)]
    assert all(detail.messages[1].status == "complete" for detail in details)
    assert len(client.outbox) == 0 and len(fake.requests) == 4


async def test_a_message_past_the_storage_quota_is_reported_and_dropped_not_retried(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=3, storage_per_user_mib=1000 / (1024 * 1024)) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        first = await client.send_message(None, "x" * 1000)
        await events.wait_for(lambda: acked(events, first) and answered(events, 1))
        refused = await client.send_message(None, "one too many")
        await events.wait_for(lambda: events.errors)
        chats = await client.list_chats()
    [error] = events.errors
    assert (error.code, error.client_message_id) == ("quota_exceeded", refused)
    assert error.message.startswith("storage quota reached") and error.message.endswith("delete old chats to make room")
    assert len(client.outbox) == 0 and len(chats.chats) == 1


async def test_a_new_chats_settings_wait_in_the_outbox_with_its_message_across_a_restart(tmp_path, make_client):
    settings = {"system_prompt": "Answer in French.", "params": ChatParams(temperature=0.3, seed=9)}
    async with running_server(tmp_path, demo_words=5) as server, FaultProxy(server.port) as proxy:
        proxy.reset()  # the server cannot be reached: the message only goes to disk
        first, _ = make_client(proxy.url(), server.token())
        await first.connect()
        sent = await first.send_message(None, "bonjour", **settings)
        await first.close()
        proxy.pass_through()
        again, events = make_client(proxy.url(), server.token())  # the next run, with the same outbox
        await again.connect()
        await events.wait_for(lambda: acked(events, sent) and answered(events, 1))
        detail = await again.get_chat(events.of_type(Ack)[0].chat_id)
    assert detail.settings == ChatSettings(**settings)
    assert [m.content for m in detail.messages if m.role == "user"] == ["bonjour"]


async def test_update_chat_and_the_archived_list_through_the_client(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=5) as server:
        client, events = make_client(server.url, server.token(), keep_for_offline=True)
        await client.connect()
        for text in ("one", "two"):
            sent = await client.send_message(None, text)
            await events.wait_for(lambda sent=sent: acked(events, sent))
        one, two = (ack.chat_id for ack in events.of_type(Ack))
        updated = await client.update_chat(one, archived=True, params=ChatParams(max_tokens=10))
        listed = await client.list_chats()
        archived = await client.list_chats(archived=True)
        kept = await client.cached_chats()
        with pytest.raises(RequestError) as refused:
            await client.update_chat("no-such-chat", pinned=True)
    assert updated.chat.archived and updated.settings.params == ChatParams(max_tokens=10)
    assert [chat.id for chat in listed.chats] == [two]
    assert [chat.id for chat in archived.chats] == [one]
    assert refused.value.code == "not_found"
    # What is kept for reading offline is the list of chats not archived.
    assert [chat.id for chat in kept] == [two]


async def test_a_full_disk_refuses_a_message_for_now_and_the_client_sends_it_again_once_there_is_room(
    tmp_path, make_client
):
    async with running_server(tmp_path, demo_words=5) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        before = await client.send_message(None, "stored before the disk filled")
        await events.wait_for(lambda: acked(events, before) and answered(events, 1))
        chat_id = events.of_type(Ack)[0].chat_id
        await fill_disk(server.server.store)  # SQLite's bound: SQLITE_FULL, as a full disk answers
        # Long enough to need pages of its own: refused whatever room the file's pages have left.
        text = "a long message, " * 2000
        during = await client.send_message(chat_id, text)
        await events.wait_for(lambda: events.errors)
        kept = [entry.client_message_id for entry in client.outbox.pending()]
        await free_disk(server.server.store)
        await events.wait_for(lambda: acked(events, during) and answered(events, 2))
        detail = await client.get_chat(chat_id)
    [refused] = events.errors
    assert (refused.code, refused.client_message_id) == ("unavailable", during)
    assert kept == [during]  # kept to be sent again, not given back
    assert [(m.role, m.status) for m in detail.messages] == [("user", "complete"), ("assistant", "complete")] * 2
    assert [m.content for m in detail.messages if m.role == "user"] == ["stored before the disk filled", text]
    assert len(client.outbox) == 0
