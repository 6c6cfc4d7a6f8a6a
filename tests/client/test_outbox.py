"""The on-disk outbox: durable adds, order kept, survives a restart, stays small."""

import base64
import json
import os
import stat

from mfu_tui.client.outbox import Outbox, OutboxEntry, PendingEdit, token_subject


def entry(n: int, chat: str | None = "c1") -> OutboxEntry:
    return OutboxEntry(client_message_id=f"m{n}", chat_id=chat, content=f"message {n}", model_id=None)


def test_pending_keeps_the_order_of_adds(tmp_path):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    for n in range(5):
        outbox.add(entry(n, chat="c1" if n % 2 else "c2"))
    assert [e.client_message_id for e in outbox.pending()] == ["m0", "m1", "m2", "m3", "m4"]


def test_a_new_instance_reads_what_was_pending(tmp_path):
    path = tmp_path / "outbox.jsonl"
    first = Outbox(path)
    for n in range(4):
        first.add(entry(n))
    first.done("m1")
    again = Outbox(path)
    assert again.pending() == [entry(0), entry(2), entry(3)]


def test_the_file_is_emptied_once_nothing_is_pending(tmp_path):
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    outbox.add(entry(1))
    outbox.add(entry(2))
    outbox.done("m2")
    outbox.done("m1")
    assert path.read_bytes() == b""
    assert Outbox(path).pending() == []


def test_done_of_an_unknown_id_changes_nothing(tmp_path):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    outbox.add(entry(1))
    assert outbox.done("nope") is None
    assert len(outbox) == 1 and "m1" in outbox


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    outbox.add(entry(1))
    with open(path, "ab") as journal:
        journal.write(b'{"op":"add","client_message_id":"m2","chat_')
    assert Outbox(path).pending() == [entry(1)]


def test_unicode_content_round_trips_byte_for_byte(tmp_path):
    path = tmp_path / "outbox.jsonl"
    text = 'สวัสดี 👋\n"quoted"\u2028'
    Outbox(path).add(OutboxEntry("m1", None, text, "demo"))
    assert Outbox(path).pending()[0].content == text


def _token(claims: dict) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


def test_each_account_has_its_own_file(tmp_path):
    alice = Outbox.for_account(tmp_path, "ws://127.0.0.1:5001/ws", token_subject(_token({"sub": "alice"})))
    alice.close()  # the next run, with a renewed token
    renewed = token_subject(_token({"sub": "alice", "exp": 9}))
    alice_renewed = Outbox.for_account(tmp_path, "ws://127.0.0.1:5001/ws", renewed)
    bob = Outbox.for_account(tmp_path, "ws://127.0.0.1:5001/ws", "bob")
    other_server = Outbox.for_account(tmp_path, "ws://10.0.0.1:5001/ws", "alice")
    assert alice.path == alice_renewed.path
    assert len({alice.path, bob.path, other_server.path}) == 3


def test_token_subject_falls_back_to_username_and_tolerates_garbage():
    assert token_subject(_token({"username": "carol"})) == "carol"
    assert token_subject("not a jwt") == ""
    assert token_subject("a.%%%.c") == ""


def account_outbox(data_dir) -> Outbox:
    return Outbox.for_account(data_dir, "ws://127.0.0.1:5001/ws", "alice")


def test_two_running_clients_of_one_account_keep_their_own_journals(tmp_path):
    first, second = account_outbox(tmp_path), account_outbox(tmp_path)
    first.add(entry(1))
    second.add(entry(2))
    second.done("m2")  # second's journal empties: first's message must survive it
    try:
        assert first.path != second.path
        assert Outbox(first.path).pending() == [entry(1)]
    finally:
        first.close()
        second.close()


def test_a_client_that_starts_adopts_what_stopped_clients_left(tmp_path):
    running, stopped, killed = account_outbox(tmp_path), account_outbox(tmp_path), account_outbox(tmp_path)
    killed.add(entry(3))
    killed.add_edit(edit(3))
    killed.close()  # as the kernel does when the process dies
    stopped.add(entry(2))
    stopped.close()
    started = account_outbox(tmp_path)  # takes the first free slot (stopped's), adopts killed's
    try:
        assert started.path == stopped.path
        assert [e.client_message_id for e in started.pending()] == ["m2", "m3"]
        assert started.pending_edits() == [edit(3)]
        assert (Outbox(killed.path).pending(), Outbox(killed.path).pending_edits()) == ([], [])  # adopted: sent once
    finally:
        running.close()
        started.close()


def edit(n: int) -> PendingEdit:
    return PendingEdit(client_edit_id=f"e{n}", chat_id="c1", message_id=f"m{n}", content=f"edited {n}", regenerate=True)


def test_edits_are_kept_beside_messages_until_confirmed(tmp_path):
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    outbox.add(entry(1))
    outbox.add_edit(edit(1))
    outbox.add_edit(edit(2))
    outbox.edit_done("e1")
    again = Outbox(path)  # a restart
    outbox.done("m1")
    outbox.edit_done("e2")  # nothing left: the journal is emptied
    assert (again.pending(), again.pending_edits()) == ([entry(1)], [edit(2)])
    assert path.read_bytes() == b""


def test_a_message_added_after_a_torn_line_survives_the_next_restart(tmp_path):
    path = tmp_path / "outbox.jsonl"
    Outbox(path).add(entry(1))
    with open(path, "ab") as journal:  # a crash cut the next record short
        journal.write(b'{"op":"add","client_message_id":"m2","chat_')
    after_the_crash = Outbox(path)
    after_the_crash.add(entry(3))  # durable: add returned
    assert Outbox(path).pending() == [entry(1), entry(3)]


def test_records_glued_onto_a_torn_line_by_an_older_version_are_recovered(tmp_path):
    path = tmp_path / "outbox.jsonl"
    # Text that looks like a record's start must not split its own line.
    tricky = OutboxEntry("m1", None, 'see {"op":"add","client_message_id":"x"} here', None)
    Outbox(path).add(tricky)
    whole = json.dumps({"op": "add", **entry(3).__dict__}, separators=(",", ":"))
    with open(path, "ab") as journal:
        journal.write(b'{"op":"add","client_message_id":"m2","chat_' + whole.encode() + b"\n")
    assert Outbox(path).pending() == [tricky, entry(3)]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_journal_its_lock_and_the_directories_it_makes_are_private(tmp_path):
    data_dir = tmp_path / "made" / "by" / "the-client"
    outbox = account_outbox(data_dir)
    try:
        outbox.add(entry(1))
        files = [outbox.path, outbox.path.with_name(outbox.path.name + ".lock")]
        assert [mode(path) for path in files] == [0o600, 0o600]
        assert [mode(path) for path in (data_dir, data_dir.parent, data_dir.parent.parent)] == [0o700] * 3
        outbox.done("m1")  # emptied, still private
        assert mode(outbox.path) == 0o600
    finally:
        outbox.close()


def test_a_journal_left_readable_by_an_older_version_is_made_private(tmp_path):
    first = account_outbox(tmp_path)
    first.add(entry(1))
    first.close()
    os.chmod(first.path, 0o644)
    again = account_outbox(tmp_path)
    try:
        assert again.pending() == [entry(1)]
        again.add(entry(2))
        assert mode(again.path) == 0o600
    finally:
        again.close()


def test_a_messages_files_are_kept_beside_the_journal_across_a_restart_and_go_with_it(tmp_path):
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    outbox.keep_file("a1", b"\x89PNG bytes")
    file = {"client_attachment_id": "a1", "name": "cat.png", "media_type": "image/png", "size": 11}
    outbox.add(OutboxEntry("m1", "c1", "", attachments=[file]))
    again = Outbox(path)
    (pending,) = again.pending()
    assert [(f.name, f.media_type, f.size) for f in pending.files()] == [("cat.png", "image/png", 11)]
    assert again.file_bytes("a1") == b"\x89PNG bytes"
    assert stat.S_IMODE((tmp_path / "attachments" / "a1").stat().st_mode) == 0o600
    again.done("m1")
    assert not (tmp_path / "attachments" / "a1").exists()


def test_a_record_naming_a_file_outside_the_outbox_is_skipped(tmp_path):
    path = tmp_path / "outbox.jsonl"
    bad = {"client_attachment_id": "../../etc/passwd", "name": "x", "media_type": "text/plain", "size": 1}
    record = {"op": "add", "client_message_id": "m1", "chat_id": None, "content": "x", "attachments": [bad]}
    path.write_text(json.dumps(record) + "\n" + json.dumps({"op": "add", **entry(2).__dict__}) + "\n")
    assert [e.client_message_id for e in Outbox(path).pending()] == ["m2"]
