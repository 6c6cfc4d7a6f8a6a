"""Write a chat to a Markdown file."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import ChatDetail, StoredMessage
from mfu_tui.tui.endings import ENDING_NOTES, Ending


def chat_markdown(
    detail: ChatDetail, exported_at: datetime, default_model: str | None = None, *, reasoning: bool = False
) -> str:
    """The chat as Markdown: the title, when and with which model, then each message.

    Args:
        detail: The whole chat.
        exported_at: The time of the export.
        default_model: The server's default model, which answered where neither
            the message nor the chat names one.
        reasoning: Whether what the models reasoned before answering is written
            too, quoted above each answer; left out by default, as by copy.

    Assistant text is copied as stored (it is Markdown already); user text
    too, so a code block typed by the user stays a code block. An answer
    has headings of its own, so who wrote each message is a bold line after
    a rule, never a heading: the file's outline is the answers' own.
    """
    chat = detail.chat
    chat_model = chat.model_id or default_model
    about = [f"Exported {_when(exported_at)}"]
    if chat_model:
        about.append(f"model {chat_model}")
    about.append(f"{len(detail.messages)} messages")
    lines = [f"# {chat.title}", "", " · ".join(about), ""]
    for message in detail.messages:
        speaker = ["**You**"] if message.role == "user" else ["**Assistant**", message.model_id or chat_model]
        byline = " · ".join(part for part in [*speaker, _when(message.created_at)] if part)
        lines += ["---", "", byline, ""]
        if reasoning and message.reasoning.strip():
            thought = message.reasoning.strip().splitlines()
            lines += ["> *Thinking:*", ">", *(f"> {line}".rstrip() for line in thought), ""]
        lines += [message.content.rstrip("\n"), ""]
        if message.role == "assistant" and (note := _ending_note(message)):
            lines += [f"*({note})*", ""]
    return "\n".join(lines)


def _ending_note(message: StoredMessage) -> str | None:
    """What the app says under the answer, if anything: how it ended, unless complete."""
    ending = Ending.of_stored(message.status, message.finish_reason)
    return "still being written" if ending is None else ENDING_NOTES.get(ending)


def _when(moment: datetime) -> str:
    """A time in the reader's zone, to the minute, with its offset: ``2026-01-02 14:03 +0100``."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %z")


def export_names(directory: Path, title: str) -> Iterator[Path]:
    """File names in ``directory`` made from the title: ``title.md``, then ``title-2.md``..."""
    stem = re.sub(r"[^\w-]+", "-", title.lower()).strip("-")[:60] or "chat"
    yield directory / f"{stem}.md"
    for number in itertools.count(2):
        yield directory / f"{stem}-{number}.md"


def export_chat(
    detail: ChatDetail, directory: Path, default_model: str | None = None, *, reasoning: bool = False
) -> Path:
    """Write the chat to a new Markdown file in ``directory``, readable by its owner only; return its path.

    ``default_model`` and ``reasoning`` are as for ``chat_markdown``.

    The file is created exclusively, so nothing is ever overwritten, not even a
    file (or a link) that appeared after we looked.
    """
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)  # ours: private; an existing one is the user's to set
    # No escape sequence in a file either.
    text = clean_text(chat_markdown(detail, datetime.now(UTC), default_model, reasoning=reasoning)).encode()
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
