"""The tables both stores share, written once; each database's schema spells them in its own words.

Each function is a released step of both schemas (``sqlite.SCHEMA`` and
``sqlite.MIGRATIONS``, ``postgres.MIGRATIONS``; the comments there say
which): like any released step it must keep making the same statements.
What only one database has (SQLite's FTS5 index and triggers, PostgreSQL's
leases, ``tsvector`` and trigger functions) stays in its own schema.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Words:
    """How one database spells what the shared tables need."""

    #: The column naming a row's user when these steps were released (SQLite's
    #: migration 11 renamed its ``user`` to ``owner``, PostgreSQL's name).
    owner: str
    #: A floating-point number.
    real: str
    #: An integer that may pass 2**31.
    big: str
    #: A flag that is false unless set.
    flag: str
    #: Bytes.
    blob: str
    #: The key that orders a chat's messages, given as they are inserted.
    serial: str
    #: After ``CREATE TABLE``/``CREATE INDEX`` of the first tables ("" or " IF NOT EXISTS").
    new: str
    #: After a table keyed by its primary key alone ("" or " WITHOUT ROWID").
    keyed: str


SQLITE = Words(
    owner="user",
    real="REAL",
    big="INTEGER",
    flag="INTEGER NOT NULL DEFAULT 0",
    blob="BLOB",
    serial="INTEGER PRIMARY KEY",
    new=" IF NOT EXISTS",
    keyed=" WITHOUT ROWID",
)

POSTGRES = Words(
    owner="owner",
    real="DOUBLE PRECISION",
    big="BIGINT",
    flag="BOOLEAN NOT NULL DEFAULT FALSE",
    blob="BYTEA",
    serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    new="",
    keyed="",
)


def conversations(w: Words) -> str:
    """Chats, their messages, and the chunks of streamed replies."""
    return f"""
    CREATE TABLE{w.new} chats (
        id            TEXT PRIMARY KEY,
        {w.owner:13} TEXT NOT NULL,
        title         TEXT NOT NULL,
        model_id      TEXT,
        pinned        {w.flag},
        created_at    {w.real} NOT NULL,
        updated_at    {w.real} NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX{w.new} chats_of_{w.owner} ON chats ({w.owner}, updated_at DESC, id DESC);

    CREATE TABLE{w.new} messages (
        n                 {w.serial},  -- order of messages within a chat
        id                TEXT NOT NULL UNIQUE,
        chat_id           TEXT NOT NULL,
        {w.owner:17} TEXT NOT NULL,
        role              TEXT NOT NULL,        -- user | assistant
        content           TEXT NOT NULL,        -- a streaming reply: '' until it ends (see chunks)
        status            TEXT NOT NULL,        -- complete | streaming | cancelled | error
        seq               INTEGER NOT NULL DEFAULT 0,
        finish_reason     TEXT,
        model_id          TEXT,
        client_message_id TEXT,                 -- user messages: the sender's idempotency key
        reply_to          TEXT,                 -- assistant messages: the user message answered
        created_at        {w.real} NOT NULL,
        edited_at         {w.real},
        ended_at          {w.real}
    );
    CREATE INDEX{w.new} messages_of_chat ON messages (chat_id, n);
    CREATE INDEX{w.new} replies ON messages (reply_to) WHERE reply_to IS NOT NULL;
    CREATE INDEX{w.new} streaming ON messages (status) WHERE status = 'streaming';
    CREATE UNIQUE INDEX{w.new} client_ids ON messages ({w.owner}, client_message_id)
        WHERE client_message_id IS NOT NULL;

    -- The pieces of assistant replies as streamed, for resume; pruned after the replay window.
    CREATE TABLE{w.new} chunks (
        message_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        content    TEXT NOT NULL,
        PRIMARY KEY (message_id, seq)
    ){w.keyed};
    """


def edits(w: Words) -> str:
    """Applied edits by their sender's idempotency key, so a resent ``edit_message`` is applied once."""
    return f"""
    CREATE TABLE{w.new} edits (
        {w.owner:14} TEXT NOT NULL,
        client_edit_id TEXT NOT NULL,
        chat_id        TEXT NOT NULL,
        message_id     TEXT NOT NULL,
        content        TEXT NOT NULL,
        edited_at      {w.real} NOT NULL,
        reply_id       TEXT,
        PRIMARY KEY ({w.owner}, client_edit_id)
    ){w.keyed};
    """


def released_together(w: Words) -> list[str]:
    """The steps that came one after the other in both schemas, in order."""
    return [chat_settings(w), import_keys(w), answer_figures(w), attachments(w)]


def chat_settings(w: Words) -> str:
    """Archived chats are listed apart; each chat's system prompt and sampling parameters
    (NULL: none, the model's default)."""
    return f"""
    ALTER TABLE chats ADD COLUMN archived {w.flag};
    ALTER TABLE chats ADD COLUMN system_prompt TEXT;
    ALTER TABLE chats ADD COLUMN temperature {w.real};
    ALTER TABLE chats ADD COLUMN top_p {w.real};
    ALTER TABLE chats ADD COLUMN max_tokens INTEGER;
    ALTER TABLE chats ADD COLUMN seed {w.big};
    -- list_chats: one section of a user's chats, pinned first, each newest first.
    CREATE INDEX chats_listed ON chats ({w.owner}, archived, pinned DESC, updated_at DESC, id DESC);
    """


def import_keys(w: Words) -> str:
    """Imported chats (``import_chat``): the key naming the conversation where it came from,
    unique per user, and how many of its entries are stored, so a part sent again stores nothing."""
    return f"""
    ALTER TABLE chats ADD COLUMN import_key TEXT;
    ALTER TABLE chats ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX chat_import_keys ON chats ({w.owner}, import_key) WHERE import_key IS NOT NULL;
    """


def answer_figures(w: Words) -> str:
    """What the server measured of each answer (NULL: not known, as for user messages and the
    answers stored before): the tokens the model server reported, the time to the first piece
    of text, and the tokens per second after it."""
    return f"""
    ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN completion_tokens INTEGER;
    ALTER TABLE messages ADD COLUMN first_token_ms INTEGER;
    ALTER TABLE messages ADD COLUMN tokens_per_second {w.real};
    """


def reasoning(w: Words) -> str:
    """What a model reasoned before answering, kept apart from the answer: each chunk says
    whether it is reasoning, and an ended reply keeps its whole reasoning beside its text
    ('' for replies without, and for those stored before)."""
    return f"""
    ALTER TABLE chunks ADD COLUMN reasoning {w.flag};
    ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';
    """


def deleted_users(w: Words) -> str:
    """Users whose data an operator deleted (``mfu-chat admin delete-user``), in order: each node
    reads the rows after the last it saw and closes those users' connections. One row a deletion."""
    return f"""
    CREATE TABLE deleted_users (
        n          {w.serial},
        owner      TEXT NOT NULL,
        deleted_at {w.real} NOT NULL
    );
    """


def attachments(w: Words) -> str:
    """Files sent with user messages (``attachment_part``), by their sender's key; ``message_id``
    and ``chat_id`` once a message took the file, NULL while it is unsent. Their bytes are in
    ``attachment_parts`` as they came, one row a part, read in order of ``start``."""
    return f"""
    CREATE TABLE attachments (
        id                   TEXT PRIMARY KEY,
        {w.owner:20} TEXT NOT NULL,
        client_attachment_id TEXT NOT NULL,
        name                 TEXT NOT NULL,
        media_type           TEXT NOT NULL,
        size                 {w.big} NOT NULL,
        received             {w.big} NOT NULL DEFAULT 0,
        created_at           {w.real} NOT NULL,
        chat_id              TEXT,
        message_id           TEXT,
        position             INTEGER
    );
    CREATE UNIQUE INDEX attachment_keys ON attachments ({w.owner}, client_attachment_id);
    CREATE INDEX attachments_unsent ON attachments ({w.owner}, created_at) WHERE message_id IS NULL;
    CREATE INDEX attachments_of_chat ON attachments (chat_id, message_id, position) WHERE chat_id IS NOT NULL;
    CREATE TABLE attachment_parts (
        attachment_id TEXT NOT NULL,
        start         {w.big} NOT NULL,
        data          {w.blob} NOT NULL,
        PRIMARY KEY (attachment_id, start)
    );
    """
