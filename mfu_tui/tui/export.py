"""Write a chat to a Markdown file."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
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


def export_names(directory: Path, title: str) -> Iterator[Path]:
    """File names in ``directory`` made from the title: ``title.md``, then ``title-2.md``..."""
    stem = re.sub(r"[^\w-]+", "-", title.lower()).strip("-")[:60] or "chat"
    yield directory / f"{stem}.md"
    for number in itertools.count(2):
        yield directory / f"{stem}-{number}.md"


def export_chat(detail: ChatDetail, directory: Path) -> Path:
    """Write the chat to a new Markdown file in ``directory``, readable by its owner only; return its path.

    The file is created exclusively, so nothing is ever overwritten, not even a
    file (or a link) that appeared after we looked.
    """
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)  # ours: private; an existing one is the user's to set
    text = clean_text(chat_markdown(detail)).encode()  # no escape sequence in a file either
    names = export_names(directory, detail.chat.title)
    while True:  # the names never run out
        path = next(names)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(descriptor, "wb") as file:
            file.write(text)
        return path
