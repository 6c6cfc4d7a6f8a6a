"""Reading a ChatGPT export: the path the user saw, the text kept, and what is skipped and why."""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import UTC, datetime

import pytest

from mfu_tui.importing.chatgpt import MAX_EXPORT_BYTES, ExportError, conversations_json, parse_export, read_export
from tests.importing.export_fixture import CONVERSATIONS, T0, broken_chain, write_export


def texts(conversation) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in conversation.messages]


def test_each_conversation_is_the_path_up_from_its_current_node_without_system_or_tool_messages(tmp_path):
    export = read_export(write_export(tmp_path / "conversations.json"))
    plain, branched, tools = export.conversations
    assert texts(plain) == [
        ("user", "How do I keep a sourdough starter alive?"),
        ("assistant", "Feed it flour and water once a day."),
        ("user", "And in the fridge?"),
        ("assistant", "Once a week is enough."),
    ]
    assert texts(branched) == [("user", "What is a lifetime in Rust?"), ("assistant", "How long a reference is valid.")]
    assert texts(tools) == [
        ("user", "[image not imported]\nWhat is in this chart?"),
        ("assistant", "Sales by month, rising."),
    ]
    assert [c.attachments for c in export.conversations] == [0, 0, 1]
    keys = [c.key for c in export.conversations]
    assert keys == ["chatgpt:c0a1-plain", "chatgpt:c0a2-branched", "chatgpt:c0a3-tools"]


def test_titles_and_times_are_the_exports(tmp_path):
    plain, _, tools = read_export(write_export(tmp_path / "conversations.json")).conversations
    assert plain.title == "Sourdough starter"
    assert tools.title == "What is in this chart?"  # untitled: its first words
    assert plain.created_at == datetime.fromtimestamp(T0, UTC)
    assert plain.updated_at == datetime.fromtimestamp(T0 + 600, UTC)
    assert plain.messages[0].created_at == datetime.fromtimestamp(T0 + 10, UTC)
    assert tools.messages[1].created_at is None  # the export has none: the server takes the one before


def test_a_conversation_without_messages_or_with_a_broken_chain_is_skipped_with_its_reason():
    shapeless = {"title": "Not one", "mapping": "nothing"}
    looped = json.loads(json.dumps(CONVERSATIONS[0]))
    looped["id"] = "c0a6-loop"
    looped["mapping"]["root"]["parent"] = "a2"
    export = parse_export(json.dumps([*CONVERSATIONS, broken_chain(), shapeless, looped]).encode())
    assert len(export.conversations) == 3
    assert [(s.name, s.reason) for s in export.skipped] == [
        ('"New chat" (c0a4-empty)', "no messages"),
        ('"Broken" (c0a5-broken)', "a broken parent chain"),
        ("conversation 6", "not a conversation"),
        ('"Sourdough starter" (c0a6-loop)', "a broken parent chain"),
    ]
    assert export.skipped[1].detail == "message u2 names message gone, which is not in it"
    assert export.skipped[2].detail.startswith("not a conversation: Expected `object`, got `str`")
    assert export.skipped[3].detail == "its parent links loop at message a2"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "not JSON"),
        (b'[{"title": "cut short', "not JSON"),
        (b'{"title": "one conversation"}', "not a ChatGPT export: conversations.json holds a list of conversations"),
        (b"PK\x03\x04rest of a zip", "a zip archive that cannot be read"),
    ],
)
def test_a_file_that_is_no_export_is_refused_in_one_line(data, problem):
    with pytest.raises(ExportError, match=problem) as refused:
        parse_export(data)
    assert "\n" not in str(refused.value)


def test_an_export_saved_with_a_byte_order_mark_is_read():
    assert len(parse_export(b"\xef\xbb\xbf" + json.dumps(CONVERSATIONS).encode()).conversations) == 3


def zipped(*members: tuple[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zip_file:
        for name, data in members:
            zip_file.writestr(name, data)
    return archive.getvalue()


EXPORT_JSON = json.dumps(CONVERSATIONS).encode()


@pytest.mark.parametrize("name", ["conversations.json", "chatgpt-export-2026-12-07/conversations.json"])
def test_the_export_s_zip_as_downloaded_is_read_as_its_conversations_json(name):
    archive = zipped(("user.json", b"{}"), ("chat.html", b"<html>"), (name, EXPORT_JSON))
    assert parse_export(archive) == parse_export(EXPORT_JSON)


@pytest.mark.parametrize(
    ("archive", "problem"),
    [
        (zipped(("user.json", b"{}")), "a zip archive without conversations.json: is it a ChatGPT data export?"),
        (zipped(("a/b/conversations.json", EXPORT_JSON)), "a zip archive without conversations.json"),
        (
            zipped(("conversations.json", EXPORT_JSON))[:-30],
            "a zip archive that cannot be read (File is not a zip file)",
        ),
    ],
    ids=["no-export", "only-deep-inside", "cut-short"],
)
def test_a_zip_that_is_no_export_is_refused_in_one_line(archive, problem):
    with pytest.raises(ExportError) as refused:
        parse_export(archive)
    assert str(refused.value).startswith(problem)


def test_a_zip_whose_conversations_json_unpacks_past_the_limit_is_refused_without_unpacking_it_all():
    archive = zipped(("conversations.json", b"[" + b" " * 5_000_000 + b"]"))  # a bomb: 5 MB packed into a few KB
    assert len(archive) < 20_000
    with pytest.raises(ExportError, match="its conversations.json unpacks to more than 1 MiB"):
        conversations_json(archive, limit=1024**2)
    assert conversations_json(archive, limit=5_000_002) == b"[" + b" " * 5_000_000 + b"]"


def test_a_fifo_a_directory_a_missing_or_a_huge_file_is_refused_before_reading(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as sparse:  # no disk used: only its size is looked at
        sparse.truncate(MAX_EXPORT_BYTES + 1)
    for path, problem in [
        (fifo, "cannot read it (not a regular file but a FIFO)"),
        (tmp_path, "cannot read it (not a regular file but a directory)"),
        (tmp_path / "missing.json", "no such file"),
        (huge, "cannot read it (larger than 1024 MiB)"),
    ]:
        with pytest.raises(ExportError) as refused:
            read_export(path)
        assert str(refused.value) == problem
