"""One example of every frame type, shared by the protocol tests and docs checks."""

from datetime import datetime, timezone

from mfu_tui import protocol as p

WHEN = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
CHAT = p.ChatSummary(id="c1", title="Hello", updated_at=WHEN, model_id="demo", message_count=2)

CLIENT_FRAMES = [
    p.Ping(ts=1764149400.5),
    p.Ping(),
    p.Message(chat_id=None, client_message_id="6f1c8e0a-0d1e-4c55-9d7e-5b0f0c7e9a11", content="Hi", model_id="demo"),
    p.Message(chat_id="c1", client_message_id="c2", content="Again"),
    p.Message(chat_id=None, content="From the seed's page, which names no message"),
    p.Message(
        chat_id=None,
        client_message_id="c3",
        content="Bonjour",
        system_prompt="Answer in French.",
        params=p.ChatParams(),
    ),
    p.Message(chat_id="c1", client_message_id="c4", content="", attachments=["a1", "a2"]),
    p.AttachmentPart(
        client_message_id="c4",
        client_attachment_id="a1",
        name="notes.txt",
        media_type="text/plain",
        size=5,
        offset=0,
        data=b"hello",
    ),
    p.AttachmentPart(
        client_message_id="c4",
        client_attachment_id="a2",
        name="empty.txt",
        media_type="text/plain",
        size=0,
        offset=0,
        data=b"",
    ),
    p.Cancel(chat_id="c1", message_id="m2"),
    p.Cancel(chat_id="c1"),
    p.Resume(chat_id="c1", message_id="m2", last_seq=0),
    p.EditMessage(chat_id="c1", message_id="m1", content="Hello?", regenerate=True),
    p.Subscribe(chat_id="c1"),
    p.PageEdit(chat_id="c1", message_id=1764149465123, content="Hello?"),
    p.PageEdit(chat_id="c1", message_id="m1", content="Hello?"),
    p.ListChats(request_id="r1", limit=50, before="cursor"),
    p.ListChats(request_id="r1"),
    p.ListChats(request_id="r1", archived=True),
    p.GetChat(request_id="r2", chat_id="c1"),
    p.RenameChat(request_id="r3", chat_id="c1", title="Greetings"),
    p.UpdateChat(
        request_id="r7",
        chat_id="c1",
        system_prompt="Answer in French.",
        params=p.ChatParams(temperature=0.2, top_p=0.9, max_tokens=512, seed=7),
        pinned=True,
        archived=False,
    ),
    p.DeleteChat(request_id="r4", chat_id="c1"),
    p.ListModels(request_id="r5"),
    p.Search(request_id="r6", query="monad functor", limit=20, before="m9"),
    p.Search(request_id="r6", query="NEAR( AND"),
    p.ImportChat(
        request_id="r7",
        import_key="chatgpt:conv-1",
        title="Monads",
        created_at=WHEN,
        updated_at=WHEN,
        first=1,
        total=3,
        messages=[
            p.ImportedMessage(role="assistant", content="A monad is", created_at=WHEN),
            p.ImportedMessage(role="assistant", content=" a way to chain functions", continued=True),
        ],
    ),
]

SERVER_FRAMES = [
    p.Pong(ts=1764149400.5),
    p.Ack(client_message_id="c2", chat_id="c1", message_id="m1", reply_id="m2"),
    p.ChatCreated(chat_id="c1", title="Hello", client_message_id="c2"),
    p.UserMessage(chat_id="c1", message_id="m1", client_message_id="c2", content="Hi", created_at=WHEN, reply_id="m2"),
    p.UserMessage(
        chat_id="c1",
        message_id="m1",
        client_message_id="c4",
        content="",
        created_at=WHEN,
        reply_id="m2",
        attachments=[p.AttachmentInfo(name="cat.png", media_type="image/png", size=2048)],
    ),
    p.AttachmentAck(client_attachment_id="a1", received=46080),
    p.Chunk(chat_id="c1", message_id="m2", seq=1, content="Hel"),
    p.Complete(chat_id="c1", message_id="m2", seq=3, finish_reason="stop"),
    p.Complete(
        chat_id="c1",
        message_id="m2",
        seq=3,
        usage=p.Usage(prompt_tokens=120, completion_tokens=3),
        first_token_ms=250,
        tokens_per_second=41.5,
    ),
    p.Cancelled(chat_id="c1", message_id="m2", seq=2),
    p.Error(code="not_found", message="No such chat.", request_id="r2", chat_id="c9"),
    p.MessageEdited(chat_id="c1", message_id="m1", content="Hello?", edited_at=WHEN),
    p.ChatUpdated(chat=CHAT),
    p.ChatUpdated(chat=CHAT, deleted=True),
    p.ChatUpdated(chat=CHAT, settings=p.ChatSettings(system_prompt="Be brief.", params=p.ChatParams(seed=1))),
    p.Result(request_id="r1", data={"chats": [], "nextCursor": None}),
    p.Resync(chat_id="c1", message_id="m2"),
]
