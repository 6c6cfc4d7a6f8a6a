"""The read cache: what the server sent, kept privately and within bounds, readable with the server gone."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import msgspec

from mfu_tui.client.read_cache import ReadCache
from mfu_tui.protocol import ChatDetail, ChatSummary, StoredMessage

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def detail(chat_id: str, *texts: str, size: int = 0) -> ChatDetail:
    """A chat whose messages say ``texts`` (padded to ``size`` characters each), a minute apart."""
    messages = [
        StoredMessage(
            id=f"{chat_id}-{n}",
            role="user" if n % 2 == 0 else "assistant",
            content=text.ljust(size, "."),
            created_at=NOW + timedelta(minutes=n),
        )
        for n, text in enumerate(texts)
    ]
    return ChatDetail(chat=ChatSummary(id=chat_id, title=f"chat {chat_id}", updated_at=NOW), messages=messages)


def test_what_is_kept_reads_back_from_a_private_file(tmp_path):
    path = tmp_path / "data" / "cache.sqlite3"
    cache = ReadCache(path)
    one, two = detail("a", "hello", "hi there"), detail("b", "other")
    cache.keep_chats([one.chat, two.chat])
    cache.keep_chat(one)
    cache.close()
    again = ReadCache(path)
    assert [chat.id for chat in again.chats()] == ["a", "b"]
    assert again.chat("a") == one and again.chat("b") is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_chats_read_longest_ago_go_past_the_bound(tmp_path):
    cache = ReadCache(tmp_path / "cache.sqlite3", max_bytes=6_000)  # two chats of 2,000 characters, not three
    for chat_id in ("a", "b", "c"):
        cache.keep_chat(detail(chat_id, "x", size=2_000))
        if chat_id == "b":
            assert cache.chat("a") is not None  # read again: now newer than b
    assert [chat_id for chat_id in "abc" if cache.chat(chat_id) is not None] == ["a", "c"]


def test_a_deleted_chat_is_forgotten_everywhere(tmp_path):
    cache = ReadCache(tmp_path / "cache.sqlite3")
    kept = detail("a", "secret")
    cache.keep_chats([kept.chat, detail("b").chat])
    cache.keep_chat(kept)
    cache.forget_chat("a")
    assert cache.chat("a") is None and [chat.id for chat in cache.chats()] == ["b"]
    assert cache.search("secret").hits == []


def test_a_file_that_is_not_a_cache_is_set_aside_not_an_error(tmp_path):
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    cache = ReadCache(path)
    cache.keep_chat(detail("a", "fresh"))
    assert cache.chat("a") is not None
    assert (tmp_path / "cache.sqlite3.unreadable").read_bytes().startswith(b"this is not")


def test_a_file_damaged_while_open_reads_as_nothing_kept_not_an_error(tmp_path):
    path = tmp_path / "cache.sqlite3"
    cache = ReadCache(path)
    kept = detail("a", "hello")
    cache.keep_chats([kept.chat])
    cache.keep_chat(kept)
    path.write_bytes(b"damaged" * 1000)  # the disk, or another program, while the app runs
    assert cache.chats() == [] and cache.chat("a") is None and cache.search("hello").hits == []
    cache.keep_chat(kept)  # a write fails quietly too (it did already): the server has it


def test_search_finds_words_in_kept_chats_newest_first_as_the_server_would(tmp_path):
    cache = ReadCache(tmp_path / "cache.sqlite3")
    cache.keep_chat(detail("a", "Python lists", "a list is mutable", "enlisted"))
    cache.keep_chat(detail("b", "nothing here"))
    hits = cache.search("LIST").hits  # whole words, the last one as a prefix too: not "enlisted"
    assert [(hit.chat_id, hit.message_id) for hit in hits] == [("a", "a-1"), ("a", "a-0")]
    assert [hits[1].snippet[start:end] for start, end in hits[1].highlights] == ["lists"]
    assert cache.search("python mutable").hits == []  # every word in one message
    assert cache.search(" * ").hits == []


def test_the_kept_list_follows_each_change_of_a_chat_in_the_server_s_order(tmp_path):
    cache = ReadCache(tmp_path / "cache.sqlite3")
    older, newer = detail("a", "hello"), detail("b", "other")
    older = msgspec.structs.replace(
        older, chat=msgspec.structs.replace(older.chat, updated_at=NOW - timedelta(hours=1))
    )
    cache.keep_chats([newer.chat, older.chat])
    cache.keep_chat(older)
    renamed = msgspec.structs.replace(older.chat, title="Recursion notes")
    cache.keep_listed(renamed)
    assert [(chat.id, chat.title) for chat in cache.chats()] == [("b", "chat b"), ("a", "Recursion notes")]
    assert cache.chat("a").chat.title == "Recursion notes"  # its kept page opens with the new title
    new = ChatSummary(id="c", title="a new chat", updated_at=NOW + timedelta(minutes=5))
    cache.keep_listed(new)
    cache.keep_listed(msgspec.structs.replace(renamed, pinned=True))
    assert [chat.id for chat in cache.chats()] == ["a", "c", "b"]  # pinned first, then the newest
    cache.keep_listed(msgspec.structs.replace(new, archived=True))
    assert [chat.id for chat in cache.chats()] == ["a", "b"]  # the kept list is of the chats not archived
