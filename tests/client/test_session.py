"""ChatSession, with no server: every session rule as a plain test, then a state machine over all of them.

The live tests (test_outbox_live, test_resume_live, test_cancel_live,
test_edit_live, test_attachments_live) prove that ``ChatClient`` wires the
session to a real server; these prove the rules themselves, fast, in any
interleaving Hypothesis finds.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import mfu_tui
from mfu_tui.client.events import MessageReloaded
from mfu_tui.client.outbox import OutboxEntry, PendingEdit, PendingFile
from mfu_tui.client.session import (
    RETRY_AFTER,
    AnswerChunks,
    AnswerEnded,
    ChatSession,
    EditSettled,
    ErrorReceived,
    FrameReceived,
    MessageAcked,
    MessageDeferred,
    MessageRefused,
    Outcome,
    ReloadNeeded,
    ServerStorage,
    UploadPart,
)
from mfu_tui.protocol import (
    ATTACHMENT_PART_BYTES,
    Ack,
    AttachmentAck,
    AttachmentPart,
    Cancel,
    Cancelled,
    ChatCreated,
    ChatSummary,
    ChatUpdated,
    Chunk,
    Complete,
    EditMessage,
    Error,
    Message,
    MessageEdited,
    Resume,
    Resync,
    ServerStatus,
    StoredMessage,
    Subscribe,
)

NOW = 1000.0
WHEN = datetime(2026, 12, 5, tzinfo=UTC)


def entry(n: int, chat: str | None = "c1", files: list[PendingFile] | None = None) -> OutboxEntry:
    attachments = [vars(file) for file in files] if files else None
    return OutboxEntry(f"m{n}", chat, f"message {n}", attachments=attachments)


def ack(n: int, chat: str = "c1") -> Ack:
    return Ack(client_message_id=f"m{n}", chat_id=chat, message_id=f"u{n}", reply_id=f"r{n}")


def chunk(seq: int, reply: str = "r1", chat: str = "c1") -> Chunk:
    return Chunk(chat_id=chat, message_id=reply, seq=seq, content=f"<{seq}>")


def complete(seq: int, reply: str = "r1", chat: str = "c1") -> Complete:
    return Complete(chat_id=chat, message_id=reply, seq=seq)


def refusal(n: int, code: str, chat: str | None = "c1") -> Error:
    return Error(code=code, message=code, chat_id=chat, client_message_id=f"m{n}")


def chat_updated(chat: str) -> ChatUpdated:
    return ChatUpdated(chat=ChatSummary(id=chat, title="t", updated_at=datetime(2026, 12, 6, tzinfo=UTC)))


def online(*entries: OutboxEntry, chats: tuple[str, ...] = ()) -> ChatSession:
    session = ChatSession(entries)
    for chat in chats:
        session.subscribe(chat)
    session.connected()
    return session


def messages(outcome: Outcome) -> list[str | None]:
    """``clientMessageId`` of the messages an outcome sends."""
    return [frame.client_message_id for frame in outcome.frames if isinstance(frame, Message)]


def events(outcome: Outcome, kind: type) -> list:
    return [event for event in outcome.events if isinstance(event, kind)]


# --- No I/O -----------------------------------------------------------------------------


def test_the_session_and_what_it_imports_do_no_io_and_read_no_clock():
    """Its module and every module of ours it imports, parsed: no asyncio, websockets, socket or clock."""
    root = Path(mfu_tui.__file__).parent
    seen: set[str] = set()
    todo = ["mfu_tui.client.session"]
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = root.joinpath(*name.split(".")[1:])
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for imported in names:
                found.add(imported.split(".")[0])
                if imported.startswith("mfu_tui."):
                    todo.append(imported)
    assert "mfu_tui.client.outbox" in seen and "mfu_tui.protocol" in seen
    assert found.isdisjoint({"asyncio", "websockets", "socket", "time", "threading", "selectors"})


# --- The outbox: order, one at a time per chat, resend ----------------------------


def test_nothing_is_sent_offline_and_the_connect_sends_the_outbox_after_the_subscriptions():
    session = ChatSession()
    assert session.post(entry(1)).frames == []
    assert session.cancel(Cancel(chat_id="c2")).frames == []
    outcome = session.connected()
    assert outcome.frames[0] == Subscribe(chat_id="c1")
    assert outcome.frames[1] == Cancel(chat_id="c2")
    assert messages(outcome) == ["m1"]
    assert session.in_flight == ["m1"]


def test_messages_to_one_chat_wait_for_the_ack_and_the_end_of_the_answer():
    session = online(chats=("c1",))
    assert messages(session.post(entry(1))) == ["m1"]
    assert messages(session.post(entry(2))) == []
    outcome = session.receive(ack(1), NOW)
    assert events(outcome, MessageAcked) == [MessageAcked(ack(1))]
    assert messages(outcome) == []  # its answer is running: the server would refuse m2
    assert messages(session.receive(chunk(1), NOW)) == []
    assert messages(session.receive(complete(1), NOW)) == ["m2"]


def test_the_server_is_awaited_from_a_send_to_the_end_of_its_answer_and_for_an_edit_or_a_cancel():
    session = online(chats=("c1",))
    assert not session.awaiting  # idle: a silence means nothing
    session.post(entry(1))
    assert session.awaiting  # its ack is owed
    session.receive(ack(1), NOW)
    assert session.awaiting  # its answer is
    session.receive(chunk(1), NOW)
    assert session.awaiting
    session.receive(complete(1), NOW)
    assert not session.awaiting
    session.edit(EditMessage(chat_id="c1", message_id="u1", content="again", client_edit_id="e1"))
    assert session.awaiting
    edited = MessageEdited(chat_id="c1", message_id="u1", content="again", edited_at=WHEN, client_edit_id="e1")
    session.receive(edited, NOW)
    assert not session.awaiting
    session.cancel(Cancel(chat_id="c1"))
    assert session.awaiting  # the end of the answer it stops is owed
    session.receive(Error(code="not_found", message="nothing to cancel", chat_id="c1"), NOW)
    assert not session.awaiting


def test_chats_go_side_by_side_and_new_chats_one_at_a_time():
    session = online(chats=("c1", "c2"))
    sent = [messages(session.post(e)) for e in (entry(1), entry(2, "c2"), entry(3, None), entry(4, None))]
    assert sent == [["m1"], ["m2"], ["m3"], []]
    outcome = session.receive(ack(3, chat="c9"), NOW)
    assert messages(outcome) == ["m4"]  # a new chat's message does not wait for another new chat's answer


def test_a_message_posted_to_a_chat_not_followed_subscribes_first():
    session = online()
    outcome = session.post(entry(1, "c7"))
    assert outcome.frames[0] == Subscribe(chat_id="c7") and messages(outcome) == ["m1"]


def test_a_message_in_flight_when_the_connection_drops_is_sent_again_and_its_answer_resumed():
    session = online(chats=("c1",))
    session.post(entry(1))
    session.receive(chunk(1), NOW)  # a chunk of an answer the client has not been told of yet
    session.lost()
    assert session.in_flight == []
    outcome = session.connected()
    assert messages(outcome) == ["m1"]
    outcome = session.receive(ack(1), NOW)
    assert Resume(chat_id="c1", message_id="r1", last_seq=1) in outcome.frames


def test_an_earlier_process_s_messages_are_resent_and_their_answer_resumed_after_the_ack():
    session = ChatSession([entry(1)])
    assert messages(session.connected()) == ["m1"]
    assert session.receive(ack(1), NOW).frames == [Resume(chat_id="c1", message_id="r1", last_seq=0)]


def test_a_message_acked_on_this_connection_is_not_resumed():
    session = online(chats=("c1",))
    session.post(entry(1))
    assert session.receive(ack(1), NOW).frames == []


def test_a_second_ack_of_one_message_is_not_passed_on():
    session = online(entry(1))
    assert events(session.receive(ack(1), NOW), MessageAcked)
    assert session.receive(ack(1), NOW).events == []
    assert session.pending == []


# --- Refusals ----------------------------------------------------------------------


def test_a_refusal_for_good_drops_the_message_tells_and_sends_the_next():
    session = online(entry(1), entry(2))
    outcome = session.receive(refusal(1, "too_large"), NOW)
    assert events(outcome, MessageRefused) == [MessageRefused("m1", "c1", "too_large")]
    assert events(outcome, ErrorReceived) == [ErrorReceived(refusal(1, "too_large"), "m1")]
    assert messages(outcome) == ["m2"]
    assert [e.client_message_id for e in session.pending] == ["m2"]


def test_a_conflict_holds_the_chat_quietly_until_its_answer_ends():
    session = online(entry(1))
    outcome = session.receive(refusal(1, "conflict"), NOW)
    assert outcome.events == [MessageDeferred("m1", "c1", "conflict", NOW + RETRY_AFTER["conflict"])]
    assert session.pending == [entry(1)] and session.in_flight == []
    # Another terminal's answer in that chat ends: the held message goes at once, before its wait.
    outcome = session.receive(complete(2, reply="r-other"), NOW + 0.5)
    assert messages(outcome) == ["m1"]


def test_a_conflict_goes_again_as_soon_as_its_chat_is_updated_and_no_other_chat_s():
    """An answer the database cut has its end stored when it is back: its chat's update frees the chat."""
    session = online(entry(1), entry(2, "c2"))
    session.receive(refusal(1, "conflict"), NOW)
    session.receive(refusal(2, "conflict", chat="c2"), NOW)
    assert messages(session.receive(chat_updated("c3"), NOW + 0.1)) == []
    outcome = session.receive(chat_updated("c1"), NOW + 0.2)
    assert messages(outcome) == ["m1"] and outcome.events == [FrameReceived(chat_updated("c1"))]
    assert session.in_flight == ["m1"] and session.wake_at == NOW + RETRY_AFTER["conflict"]  # c2 waits its time


def test_a_message_refused_for_now_is_tried_again_when_its_wait_is_over():
    session = online(entry(1, None))
    outcome = session.receive(refusal(1, "rate_limited", chat=None), NOW)
    assert events(outcome, ErrorReceived) == [ErrorReceived(refusal(1, "rate_limited", chat=None), "m1")]
    assert session.wake_at == NOW + RETRY_AFTER["rate_limited"]
    assert session.tick(NOW + 1).frames == []
    assert messages(session.tick(NOW + RETRY_AFTER["rate_limited"])) == ["m1"]
    assert session.wake_at is None


def test_a_message_refused_because_the_server_s_database_is_out_of_reach_is_kept_and_sent_again():
    session = online(entry(1, None))
    outcome = session.receive(refusal(1, "unavailable", chat=None), NOW)
    assert events(outcome, MessageRefused) == []  # not given back: it stays in the outbox
    assert session.pending == [entry(1, None)] and session.wake_at == NOW + RETRY_AFTER["unavailable"]
    assert messages(session.tick(NOW + RETRY_AFTER["unavailable"])) == ["m1"]


def test_a_server_status_is_an_event_and_ok_sends_at_once_what_was_refused_as_unavailable():
    session = online(entry(1, None), entry(2, "c2"), entry(3, "c3"))
    outage = ServerStatus(storage="unavailable", message="the database is out of reach")
    assert session.receive(outage, NOW) == Outcome([], [ServerStorage(False, "the database is out of reach")])
    session.receive(refusal(1, "unavailable", chat=None), NOW)
    session.receive(refusal(2, "unavailable", chat="c2"), NOW)
    session.receive(refusal(3, "rate_limited", chat="c3"), NOW)  # a limit, not the outage: it waits its time
    assert session.in_flight == [] and session.wake_at == NOW + RETRY_AFTER["unavailable"]
    outcome = session.receive(ServerStatus(storage="ok", message="back"), NOW + 0.1)
    assert messages(outcome) == ["m1", "m2"] and outcome.events == [ServerStorage(True, "back")]
    assert session.in_flight == ["m1", "m2"] and session.wake_at == NOW + RETRY_AFTER["rate_limited"]
    assert session.tick(NOW + RETRY_AFTER["unavailable"]).frames == []  # not sent a second time
    assert messages(session.tick(NOW + RETRY_AFTER["rate_limited"])) == ["m3"]


def test_an_ok_with_nothing_refused_sends_nothing_and_an_ok_offline_waits_for_the_connect():
    assert online(entry(1)).receive(ServerStatus(storage="ok", message="fine"), NOW).frames == []  # m1 in flight
    session = online(entry(1))
    session.receive(refusal(1, "unavailable"), NOW)
    session.lost()
    assert session.receive(ServerStatus(storage="ok", message="back"), NOW).frames == []
    assert messages(session.connected()) == ["m1"]


def test_a_new_chat_s_message_refused_for_now_goes_again_as_soon_as_an_answer_ends():
    session = online(chats=("c1",))
    session.post(entry(1))
    session.receive(ack(1), NOW)
    session.post(entry(2, None))
    session.receive(refusal(2, "rate_limited", chat=None), NOW)  # the user's running answers are at their bound
    assert messages(session.receive(complete(0), NOW + 1)) == ["m2"]


def test_a_held_chat_is_released_by_the_clock_even_offline_and_sent_at_the_connect():
    session = online(entry(1))
    session.receive(refusal(1, "conflict"), NOW)
    session.lost()
    assert session.tick(NOW + 5).frames == []
    assert messages(session.connected()) == ["m1"]


def test_an_error_naming_no_message_in_flight_refuses_nothing():
    session = online(entry(1))
    outcome = session.receive(refusal(9, "bad_request"), NOW)
    assert outcome.events == [ErrorReceived(refusal(9, "bad_request"), None)]
    assert session.pending == [entry(1)]


# --- Files ---------------------------------------------------------------------------


def test_files_go_up_a_part_at_a_time_before_their_message():
    files = [PendingFile("f1", "a.txt", "text/plain", 100_000), PendingFile("f2", "b.png", "image/png", 10)]
    session = ChatSession([entry(1, files=files), entry(2, "c2")])
    outcome = session.connected()
    assert outcome.frames == [
        UploadPart("m1", files[0], 0),
        Message(chat_id="c2", client_message_id="m2", content="message 2"),
    ]
    assert session.receive(AttachmentAck(client_attachment_id="f1", received=46_080), NOW).frames == [
        UploadPart("m1", files[0], 46_080)
    ]
    # The server held more than the part (an earlier connection's): the next part starts there.
    assert session.receive(AttachmentAck(client_attachment_id="f1", received=99_000), NOW).frames == [
        UploadPart("m1", files[0], 99_000)
    ]
    assert session.receive(AttachmentAck(client_attachment_id="f1", received=100_000), NOW).frames == [
        UploadPart("m1", files[1], 0)
    ]
    outcome = session.receive(AttachmentAck(client_attachment_id="f2", received=10), NOW)
    assert outcome.frames == [
        Message(chat_id="c1", client_message_id="m1", content="message 1", attachments=["f1", "f2"])
    ]
    assert session.receive(AttachmentAck(client_attachment_id="f2", received=10), NOW).frames == []  # late


def test_an_upload_cut_by_a_drop_starts_over_and_a_late_ack_is_ignored():
    file = PendingFile("f1", "a.txt", "text/plain", 100_000)
    session = online(entry(1, files=[file]))
    session.receive(AttachmentAck(client_attachment_id="f1", received=46_080), NOW)
    session.lost()
    assert session.receive(AttachmentAck(client_attachment_id="f1", received=92_160), NOW).frames == []
    assert [frame for frame in session.connected().frames if isinstance(frame, UploadPart)] == [
        UploadPart("m1", file, 0)
    ]


def test_a_refused_part_refuses_its_message_and_a_missing_file_gives_it_up():
    file, other = PendingFile("f1", "a.txt", "text/plain", 100_000), PendingFile("f2", "b.txt", "text/plain", 5)
    session = online(entry(1, files=[file]), entry(2, files=[other]))
    outcome = session.receive(refusal(1, "quota_exceeded"), NOW)
    assert events(outcome, MessageRefused) == [MessageRefused("m1", "c1", "quota_exceeded")]
    assert outcome.frames == [UploadPart("m2", other, 0)]
    assert session.receive(AttachmentAck(client_attachment_id="f1", received=46_080), NOW).frames == []
    session = online(entry(3, files=[file]), entry(4))
    outcome = session.file_missing("m3")
    assert outcome.events == [MessageRefused("m3", "c1", None)] and messages(outcome) == ["m4"]


# --- Edits and cancels -------------------------------------------------------------------


def edit(n: int, regenerate: bool = True) -> EditMessage:
    return EditMessage(
        chat_id="c1", message_id="u1", content=f"edit {n}", regenerate=regenerate, client_edit_id=f"e{n}"
    )


def edited(n: int, reply: str | None = "r2") -> MessageEdited:
    return MessageEdited(
        chat_id="c1", message_id="u1", content=f"edit {n}", edited_at=WHEN, reply_id=reply, client_edit_id=f"e{n}"
    )


def test_an_edit_is_sent_again_after_every_connect_until_confirmed():
    session = online()
    assert session.edit(edit(1)).frames == [edit(1)]
    session.lost()
    assert edit(1) in session.connected().frames
    outcome = session.receive(edited(1), NOW)
    assert outcome.events == [EditSettled("e1"), FrameReceived(edited(1))]
    # Sent before this connection: the regenerated answer is resumed.
    assert outcome.frames == [Resume(chat_id="c1", message_id="r2", last_seq=0)]
    session.lost()
    assert edit(1) not in session.connected().frames


def test_an_edit_of_an_earlier_process_is_resent_and_a_refused_edit_is_settled():
    session = ChatSession(edits=[PendingEdit("e1", "c1", "u1", "edit 1", True)])
    assert session.connected().frames == [edit(1)]
    outcome = session.receive(Error(code="conflict", message="busy", chat_id="c1", client_edit_id="e1"), NOW)
    assert events(outcome, EditSettled) == [EditSettled("e1")]
    session.lost()
    assert session.connected().frames == []


def test_a_regenerated_answer_holds_its_chat_like_an_acked_one():
    session = online(chats=("c1",))
    session.edit(edit(1))
    session.receive(edited(1), NOW)
    assert messages(session.post(entry(5))) == []
    assert messages(session.receive(complete(0, reply="r2"), NOW)) == ["m5"]


def test_a_cancel_is_sent_again_after_a_reconnect_until_the_answer_ends_and_a_drop_cancels_nothing():
    session = online(entry(1))
    session.receive(ack(1), NOW)
    session.receive(chunk(1), NOW)
    assert session.lost() is None
    outcome = session.connected()
    assert not any(isinstance(frame, Cancel) for frame in outcome.frames)  # a drop is not a cancel
    assert Resume(chat_id="c1", message_id="r1", last_seq=1) in outcome.frames
    assert session.cancel(Cancel(chat_id="c1")).frames == [Cancel(chat_id="c1")]
    session.lost()
    assert Cancel(chat_id="c1") in session.connected().frames
    end = Cancelled(chat_id="c1", message_id="r1", seq=1)
    assert session.receive(end, NOW).events == [AnswerEnded(end)]
    session.lost()
    assert Cancel(chat_id="c1") not in session.connected().frames


def test_a_new_answer_drops_an_older_cancel_and_not_found_drops_it_too():
    session = online(entry(1), chats=("c1", "c2"))
    session.cancel(Cancel(chat_id="c1"))
    session.cancel(Cancel(chat_id="c2"))
    session.receive(ack(1), NOW)
    session.receive(Error(code="not_found", message="no chat", chat_id="c2"), NOW)
    session.lost()
    assert not any(isinstance(frame, Cancel) for frame in session.connected().frames)


# --- Streams ------------------------------------------------------------------------------


def test_chunks_are_handed_over_once_in_order_with_the_end_last():
    session = online(chats=("c1",))
    session.post(entry(1))
    session.receive(ack(1), NOW)
    assert session.receive(chunk(1), NOW).events == [AnswerChunks((chunk(1),))]
    outcome = session.receive(chunk(3), NOW)
    assert outcome.events == [] and outcome.frames == [Resume(chat_id="c1", message_id="r1", last_seq=1)]
    assert session.receive(complete(3), NOW).events == []
    outcome = session.receive(chunk(2), NOW)
    assert outcome.events == [AnswerChunks((chunk(2), chunk(3))), AnswerEnded(complete(3))]
    assert AnswerEnded(complete(3)).reason == "stop"
    assert session.receive(chunk(2), NOW).events == [] and session.receive(complete(3), NOW).events == []


def test_a_resync_asks_for_a_reload_and_a_streaming_one_is_followed_from_its_stored_seq():
    session = online(entry(1), entry(2))
    session.receive(ack(1), NOW)
    assert session.receive(Resync(chat_id="c1", message_id="r1"), NOW).events == [ReloadNeeded("c1", "r1")]
    assert session.receive(chunk(1), NOW).events == []  # dropped while reloading
    stored = StoredMessage(
        id="r1", role="assistant", content="abc", created_at=WHEN, status="streaming", seq=4, reasoning="Hmm."
    )
    outcome = session.reloaded("c1", "r1", stored)
    assert outcome.events == [MessageReloaded("c1", "r1", "abc", "streaming", reasoning="Hmm.")]
    assert outcome.frames == [Resume(chat_id="c1", message_id="r1", last_seq=4)]
    assert session.receive(chunk(5), NOW).events == [AnswerChunks((chunk(5),))]


def test_a_reloaded_answer_that_ended_or_is_gone_lets_the_next_message_go():
    for stored in (StoredMessage(id="r1", role="assistant", content="abc", created_at=WHEN), None):
        session = online(entry(1), entry(2))
        session.receive(ack(1), NOW)
        session.receive(Resync(chat_id="c1", message_id="r1"), NOW)
        assert messages(session.reloaded("c1", "r1", stored)) == ["m2"]


def test_an_answer_whose_chat_was_deleted_ends_with_its_not_found():
    session = online(entry(1), entry(2))
    session.receive(ack(1), NOW)
    outcome = session.receive(Error(code="not_found", message="gone", chat_id="c1", message_id="r1"), NOW)
    assert messages(outcome) == ["m2"]
    session.lost()
    assert not any(isinstance(frame, Resume) for frame in session.connected().frames)


def test_a_second_resync_of_one_answer_reloads_it_once():
    session = online(chats=("c1",))
    session.post(entry(1))
    session.receive(ack(1), NOW)
    assert session.receive(Resync(chat_id="c1", message_id="r1"), NOW).events == [ReloadNeeded("c1", "r1")]
    assert session.receive(Resync(chat_id="c1", message_id="r1"), NOW).events == []
    session.reloaded("c1", "r1", StoredMessage(id="r1", role="assistant", content="abc", created_at=WHEN))
    assert session.receive(Resync(chat_id="c1", message_id="r1"), NOW).events == []  # it ended


def test_a_created_chat_is_followed_after_a_reconnect_and_a_deleted_one_is_not():
    session = online()
    created = ChatCreated(chat_id="c5", title="t", client_message_id="m1")
    assert session.receive(created, NOW).events == [FrameReceived(created)]
    session.lost()
    assert Subscribe(chat_id="c5") in session.connected().frames
    session.forget_chat("c5")
    session.lost()
    assert Subscribe(chat_id="c5") not in session.connected().frames


# --- Any interleaving: a state machine against a model server ----------------------------

#: Chunks of every answer the model server streams.
ANSWER_CHUNKS = 3
#: The size of the file some messages carry: three parts.
FILE_SIZE = 2 * ATTACHMENT_PART_BYTES + 100


@dataclass
class _Answer:
    chat_id: str
    sent: int = 0
    end: Complete | Cancelled | None = None


class ModelServer:
    """What the real server promises, in a few lines: idempotent messages and edits, one answer per chat.

    ``take`` handles one client frame and returns the frames it answers with.
    """

    def __init__(self) -> None:
        self.acks: dict[str, Ack] = {}
        self.edits: dict[str, MessageEdited] = {}
        self.answers: dict[str, _Answer] = {}
        self.generating: dict[str, str] = {}
        self.user_messages: list[tuple[str, str]] = []
        self.received: dict[str, int] = {}
        #: Answers whose replay buffer is gone: a resume of them is answered with ``resync``.
        self.forgotten: set[str] = set()
        #: The first storing of each message, by chat: the order the user posted them in, if the session is right.
        self.stored_order: dict[str, list[str]] = {}
        self.counter = 0

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def take(self, frame: object) -> list[object]:
        if isinstance(frame, Message):
            return self._message(frame)
        if isinstance(frame, AttachmentPart):
            held = self.received.get(frame.client_attachment_id, 0)
            if frame.offset <= held:
                held = self.received[frame.client_attachment_id] = max(held, frame.offset + len(frame.data))
            return [AttachmentAck(client_attachment_id=frame.client_attachment_id, received=held)]
        if isinstance(frame, Resume):
            answer = self.answers[frame.message_id]
            if frame.message_id in self.forgotten and (answer.end is not None or frame.last_seq < answer.sent):
                return [Resync(chat_id=frame.chat_id, message_id=frame.message_id)]
            replay: list[object] = [
                self.chunk(frame.message_id, seq) for seq in range(frame.last_seq + 1, answer.sent + 1)
            ]
            return replay + ([answer.end] if answer.end is not None else [])
        if isinstance(frame, Cancel):
            running = self.generating.get(frame.chat_id)
            if running is not None:
                return [self.end(running, cancelled=True)]
            ended = [a.end for a in self.answers.values() if a.chat_id == frame.chat_id and a.end is not None]
            return ended[-1:]  # how its last answer ended: a late cancel is harmless
        if isinstance(frame, EditMessage):
            return self._edit(frame)
        return []  # subscribe

    def _message(self, frame: Message) -> list[object]:
        assert frame.client_message_id is not None
        known = self.acks.get(frame.client_message_id)
        if known is not None:
            return [known]
        for file_id in frame.attachments or []:
            assert self.received.get(file_id, 0) >= FILE_SIZE, "a message went before its files"
        chat_id = frame.chat_id
        if chat_id is not None and chat_id in self.generating:
            return [Error(code="conflict", message="busy", chat_id=chat_id, client_message_id=frame.client_message_id)]
        created: list[object] = []
        if chat_id is None:
            chat_id = self.new_id("c")
            created = [ChatCreated(chat_id=chat_id, title="t", client_message_id=frame.client_message_id)]
        message_id, reply_id = self.new_id("u"), self.new_id("r")
        self.acks[frame.client_message_id] = ack = Ack(
            client_message_id=frame.client_message_id, chat_id=chat_id, message_id=message_id, reply_id=reply_id
        )
        self.stored_order.setdefault(chat_id, []).append(frame.client_message_id)
        self.user_messages.append((chat_id, message_id))
        self.answers[reply_id] = _Answer(chat_id)
        self.generating[chat_id] = reply_id
        return [*created, ack]

    def _edit(self, frame: EditMessage) -> list[object]:
        assert frame.client_edit_id is not None
        known = self.edits.get(frame.client_edit_id)
        if known is not None:
            return [known]
        if frame.regenerate and frame.chat_id in self.generating:
            return [Error(code="conflict", message="busy", chat_id=frame.chat_id, client_edit_id=frame.client_edit_id)]
        reply_id = None
        if frame.regenerate:
            reply_id = self.new_id("r")
            self.answers[reply_id] = _Answer(frame.chat_id)
            self.generating[frame.chat_id] = reply_id
        self.edits[frame.client_edit_id] = edited = MessageEdited(
            chat_id=frame.chat_id,
            message_id=frame.message_id,
            content=frame.content,
            edited_at=WHEN,
            reply_id=reply_id,
            client_edit_id=frame.client_edit_id,
        )
        return [edited]

    def chunk(self, reply_id: str, seq: int) -> Chunk:
        return Chunk(
            chat_id=self.answers[reply_id].chat_id, message_id=reply_id, seq=seq, content=f"<{reply_id}.{seq}>"
        )

    def stored(self, reply_id: str) -> StoredMessage:
        """An answer as ``get_chat`` has it now."""
        answer = self.answers[reply_id]
        content = "".join(self.chunk(reply_id, seq).content for seq in range(1, answer.sent + 1))
        status = "streaming" if answer.end is None else "complete" if isinstance(answer.end, Complete) else "cancelled"
        return StoredMessage(
            id=reply_id, role="assistant", content=content, created_at=WHEN, status=status, seq=answer.sent
        )

    def stream(self, reply_id: str) -> Chunk | Complete:
        """The next frame of a running answer."""
        answer = self.answers[reply_id]
        if answer.sent == ANSWER_CHUNKS:
            return self.end(reply_id, cancelled=False)  # type: ignore[return-value]
        answer.sent += 1
        return self.chunk(reply_id, answer.sent)

    def end(self, reply_id: str, *, cancelled: bool) -> Complete | Cancelled:
        answer = self.answers[reply_id]
        answer.end = (Cancelled if cancelled else Complete)(
            chat_id=answer.chat_id, message_id=reply_id, seq=answer.sent
        )
        del self.generating[answer.chat_id]
        return answer.end


class SessionMachine(RuleBasedStateMachine):
    """Sends, acks, refusals, chunks (repeated by resumes), drops, reconnects, edits and cancels, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.session = ChatSession()
        self.server = ModelServer()
        self.now = NOW
        self.to_server: list[object] = []
        self.to_client: list[object] = []
        self.posted: dict[str, str | None] = {}
        self.outbox: set[str] = set()
        self.acked: set[str] = set()
        self.refused: set[str] = set()
        self.edits: set[str] = set()
        self.edits_made: list[str] = []
        self.cancelled_chats: set[str] = set()
        self.delivered: dict[str, list[int]] = {}
        self.ended: dict[str, Complete | Cancelled] = {}
        self.sent_first: dict[str | None, list[str]] = {}
        self.reloads: list[ReloadNeeded] = []

    # --- The driver's side ---------------------------------------------------------

    def take(self, outcome: Outcome) -> None:
        """Send an outcome's frames (if online) and check its events against what happened."""
        for item in outcome.frames:
            assert self.session.online
            if isinstance(item, Cancel):
                assert item.chat_id in self.cancelled_chats, "a cancel nobody asked for"
            if isinstance(item, Message) and item.client_message_id not in self.sent_first.get(item.chat_id, []):
                self.sent_first.setdefault(item.chat_id, []).append(item.client_message_id)
            self.to_server.append(self.part(item) if isinstance(item, UploadPart) else item)
        for event in outcome.events:
            self.check(event)

    @staticmethod
    def part(part: UploadPart) -> AttachmentPart:
        size = min(ATTACHMENT_PART_BYTES, part.file.size - part.offset)
        return AttachmentPart(
            client_message_id=part.client_message_id,
            client_attachment_id=part.file.client_attachment_id,
            name=part.file.name,
            media_type=part.file.media_type,
            size=part.file.size,
            offset=part.offset,
            data=b"x" * size,
        )

    def check(self, event: object) -> None:
        if isinstance(event, MessageAcked):
            cmid = event.ack.client_message_id
            assert cmid not in self.acked and cmid not in self.refused, "acked twice, or acked and refused"
            assert event.ack == self.server.acks[cmid]
            self.acked.add(cmid)
            self.outbox.discard(cmid)
        elif isinstance(event, MessageRefused):
            assert event.client_message_id not in self.acked
            self.refused.add(event.client_message_id)
            self.outbox.discard(event.client_message_id)
        elif isinstance(event, EditSettled):
            self.edits.remove(event.client_edit_id)
        elif isinstance(event, AnswerChunks):
            for delivered in event.chunks:
                seqs = self.delivered.setdefault(delivered.message_id, [])
                assert delivered.message_id not in self.ended
                assert delivered.seq == len(seqs) + 1, f"chunk {delivered.seq} after {seqs}"
                assert delivered == self.server.chunk(delivered.message_id, delivered.seq)
                seqs.append(delivered.seq)
        elif isinstance(event, ReloadNeeded):
            self.reloads.append(event)
        elif isinstance(event, ServerStorage):
            assert event.message == "status"
        elif isinstance(event, MessageReloaded):
            # The whole text so far replaces what was shown; chunks follow from its seq on.
            stored = self.server.stored(event.message_id)
            assert event.content == stored.content and event.message_id not in self.ended
            self.delivered[event.message_id] = list(range(1, stored.seq + 1))
            if event.status != "streaming":
                self.ended[event.message_id] = self.server.answers[event.message_id].end  # type: ignore[assignment]
        elif isinstance(event, AnswerEnded):
            reply_id = event.end.message_id
            assert reply_id not in self.ended, "an answer ended twice"
            assert len(self.delivered.get(reply_id, [])) == event.end.seq, "an end before its chunks"
            if isinstance(event.end, Cancelled):
                assert event.end.chat_id in self.cancelled_chats, "cancelled by no one"
            self.ended[reply_id] = event.end

    # --- Rules ------------------------------------------------------------------------

    @rule(chat=st.integers(0, 3), with_file=st.booleans())
    def post(self, chat: int, with_file: bool) -> None:
        """Post to a new chat (0) or to one the server made."""
        chats = sorted(self.server.stored_order)
        chat_id = chats[chat - 1] if 0 < chat <= len(chats) else None
        cmid = f"m{len(self.posted)}"
        files = [PendingFile(f"f-{cmid}", "a.txt", "text/plain", FILE_SIZE)] if with_file else None
        self.posted[cmid] = chat_id
        self.outbox.add(cmid)
        self.take(
            self.session.post(OutboxEntry(cmid, chat_id, "hi", attachments=[vars(f) for f in files or []] or None))
        )

    @precondition(lambda self: self.server.user_messages)
    @rule(which=st.integers(0, 5), regenerate=st.booleans())
    def edit(self, which: int, regenerate: bool) -> None:
        if not self.server.user_messages:
            return
        chat_id, message_id = self.server.user_messages[which % len(self.server.user_messages)]
        client_edit_id = f"e{len(self.edits_made)}"
        self.edits_made.append(client_edit_id)
        self.edits.add(client_edit_id)
        frame = EditMessage(
            chat_id=chat_id, message_id=message_id, content="new", regenerate=regenerate, client_edit_id=client_edit_id
        )
        self.take(self.session.edit(frame))

    @precondition(lambda self: self.server.stored_order)
    @rule(which=st.integers(0, 3))
    def cancel(self, which: int) -> None:
        chats = sorted(self.server.stored_order)
        if chats:
            chat_id = chats[which % len(chats)]
            self.cancelled_chats.add(chat_id)
            self.take(self.session.cancel(Cancel(chat_id=chat_id)))

    @precondition(lambda self: self.to_server)
    @rule()
    def server_takes_a_frame(self) -> None:
        if self.to_server:
            answers = self.server.take(self.to_server.pop(0))
            self.to_client += answers

    @precondition(lambda self: self.to_server)
    @rule(code=st.sampled_from(["bad_request", "quota_exceeded", "conflict", "rate_limited", "unavailable"]))
    def server_refuses_a_message(self, code: str) -> None:
        """The next frame, if a message the server has not stored, is refused (a limit, a bad request)."""
        if (
            self.to_server
            and isinstance(frame := self.to_server[0], Message)
            and frame.client_message_id not in self.server.acks
        ):
            self.to_server.pop(0)
            self.to_client.append(
                Error(code=code, message=code, chat_id=frame.chat_id, client_message_id=frame.client_message_id)
            )

    @precondition(lambda self: self.session.online)
    @rule(available=st.booleans())
    def server_tells_its_storage(self, available: bool) -> None:
        """A ``server_status``: a message refused as ``unavailable`` may go at once, none may go twice."""
        self.to_client.append(ServerStatus(storage="ok" if available else "unavailable", message="status"))

    @precondition(lambda self: self.server.generating)
    @rule(which=st.integers(0, 3))
    def server_streams(self, which: int) -> None:
        running = sorted(self.server.generating.values())
        if running:
            frame = self.server.stream(running[which % len(running)])
            if self.session.online:  # else it is lost on the way; a resume brings it back
                self.to_client.append(frame)

    @precondition(lambda self: self.server.answers)
    @rule(which=st.integers(0, 5))
    def server_forgets_a_replay(self, which: int) -> None:
        """The server can no longer replay an answer (its buffer is gone): a resume of it gets ``resync``."""
        answers = sorted(self.server.answers)
        self.server.forgotten.add(answers[which % len(answers)])

    @precondition(lambda self: self.reloads)
    @rule()
    def reload_answers(self) -> None:
        """The driver's ``get_chat`` after a ``resync`` comes back (the reload is a request, on the connection)."""
        reload = self.reloads.pop(0)
        if self.session.online:
            self.take(self.session.reloaded(reload.chat_id, reload.message_id, self.server.stored(reload.message_id)))
        else:
            self.session.reload_failed(reload.message_id)

    @precondition(lambda self: self.to_client)
    @rule()
    def client_receives(self) -> None:
        if self.to_client:
            self.take(self.session.receive(self.to_client.pop(0), self.now))

    @precondition(lambda self: self.session.online)
    @rule()
    def connection_drops(self) -> None:
        if self.session.online:
            assert self.session.lost() is None
            self.to_server.clear()
            self.to_client.clear()

    @precondition(lambda self: not self.session.online)
    @rule()
    def connection_comes_back(self) -> None:
        if not self.session.online:
            self.take(self.session.connected())

    @rule(seconds=st.sampled_from([0.5, 2.0, 10.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.take(self.session.tick(self.now))

    # --- Invariants ---------------------------------------------------------------------

    @invariant()
    def nothing_left_the_outbox_but_acked_or_refused_messages(self) -> None:
        assert {entry.client_message_id for entry in self.session.pending} == self.outbox

    @invariant()
    def one_message_in_flight_per_chat(self) -> None:
        chats = [self.posted[cmid] for cmid in self.session.in_flight]
        assert len(chats) == len(set(chats))

    @invariant()
    def each_chat_stores_its_messages_in_the_order_posted(self) -> None:
        for chat_id, stored in self.server.stored_order.items():
            posted = [cmid for cmid, chat in self.posted.items() if chat == chat_id]
            assert [cmid for cmid in stored if cmid in posted] == [cmid for cmid in posted if cmid in stored]

    def teardown(self) -> None:
        """Let the network settle: everything posted is answered, every answer delivered whole, once."""
        if not self.session.online:
            self.take(self.session.connected())
        for _ in range(2000):
            if self.to_server:
                self.server_takes_a_frame()
            elif self.to_client:
                self.client_receives()
            elif self.reloads:
                self.reload_answers()
            elif self.server.generating:
                self.server_streams(0)
            elif self.session.wake_at is not None:
                self.time_passes(max(self.session.wake_at - self.now, 0.0))
            else:
                break
        assert self.outbox == set() and self.acked | self.refused == set(self.posted)
        assert self.edits == set()
        for cmid in self.acked:
            reply_id = self.server.acks[cmid].reply_id
            end = self.server.answers[reply_id].end
            assert self.ended.get(reply_id) == end, f"answer {reply_id} not delivered whole"
        assert not self.session.awaiting, "settled, yet waiting for the server: it would be probed for ever"


TestSessionMachine = SessionMachine.TestCase
# A fifth of the profile's examples (tests/conftest.py: 40 in dev, 2,000 in ci), each a run of up to 40 steps:
# 80,000 steps in CI, which was 46 s at 5,000 runs, near the 20-minute bound of the whole run.
TestSessionMachine.settings = settings(max_examples=settings.default.max_examples // 5, stateful_step_count=40)
