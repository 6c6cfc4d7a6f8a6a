"""Write a chat to a Markdown file."""

from __future__ import annotations

import re
from pathlib import Path

from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import ChatDetail

_NOTES = {"cancelled": "*(cancelled)*", "error": "*(failed)*", "streaming": "*(still being written)*"}


def chat_markdown(detail: ChatDetail) -> str:
    """The chat as Markdown: the title, then each message under its speaker.

    Assistant text is copied as stored (it is Markdown already); user text
    too, so a code block typed by the user stays a code block.
    """
    chat = detail.chat
    lines = [f"# {chat.title}", ""]
    if chat.model_id:
        lines += [f"Model: {chat.model_id}", ""]
    for message in detail.messages:
        speaker = "You" if message.role == "user" else "Assistant"
        lines += [f"## {speaker}", "", message.content.rstrip("\n"), ""]
        if note := _NOTES.get(message.status):
            lines += [note, ""]
    return "\n".join(lines)


def export_path(directory: Path, title: str) -> Path:
    """A file name in ``directory`` made from the title, not overwriting anything."""
    stem = re.sub(r"[^\w-]+", "-", title.lower()).strip("-")[:60] or "chat"
    path = directory / f"{stem}.md"
    number = 2
    while path.exists():
        path = directory / f"{stem}-{number}.md"
        number += 1
    return path


def export_chat(detail: ChatDetail, directory: Path) -> Path:
    """Write the chat to a new Markdown file in ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = export_path(directory, detail.chat.title)
    path.write_text(clean_text(chat_markdown(detail)), encoding="utf-8")  # no escape sequence in a file either
    return path
