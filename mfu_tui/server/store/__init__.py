"""Storage of chats, messages and streamed chunks."""

from mfu_tui.server.store.base import BadCursor, Edit, Exchange, MessageState, NotEditable, Store
from mfu_tui.server.store.sqlite import SqliteStore

__all__ = ["BadCursor", "Edit", "Exchange", "MessageState", "NotEditable", "SqliteStore", "Store"]
