"""What a model is asked: the turns of a chat, with the files sent with its user messages.

The store reads these (``Exchange.history``), generation adds the system
prompt, and each provider turns them into its own request. A text file
becomes a fenced block after its message's text (``turn_text``), the same
for every provider; an image is left to the provider (OpenAI-compatible
servers take it as an ``image_url`` content part).
"""

from __future__ import annotations

import dataclasses
import re

from mfu_tui.protocol import TEXT_MEDIA_TYPE, AttachmentInfo

#: Runs of backticks in a file: its fence must be longer than any of them.
_BACKTICKS = re.compile(r"`+")


@dataclasses.dataclass(frozen=True)
class AttachedFile:
    """A file sent with a user message, whole."""

    name: str
    media_type: str
    data: bytes

    @property
    def is_text(self) -> bool:
        """True for a text file (its text goes in the turn), False for an image."""
        return self.media_type == TEXT_MEDIA_TYPE

    def info(self) -> AttachmentInfo:
        """The file as its chip shows it."""
        return AttachmentInfo(name=self.name, media_type=self.media_type, size=len(self.data))


@dataclasses.dataclass(frozen=True)
class ModelTurn:
    """One message of the conversation sent to the model."""

    role: str
    content: str
    #: The files of a user message, in the order attached.
    attachments: tuple[AttachedFile, ...] = ()

    @property
    def images(self) -> list[AttachedFile]:
        """The attached images, in order."""
        return [file for file in self.attachments if not file.is_text]


def fenced(file: AttachedFile) -> str:
    """A text file as a Markdown fenced block headed by its name.

    The fence is longer than any run of backticks in the file, so the file
    cannot close it early. Bytes that are not UTF-8 (our client refuses such
    files; another client may send them) are replaced, not fatal.
    """
    text = file.data.decode("utf-8", errors="replace")
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if not text or text.endswith("\n") else text + "\n"
    return f"{file.name}:\n{fence}\n{body}{fence}"


def turn_text(turn: ModelTurn) -> str:
    """The turn's text as the model reads it: the message, then each text file in a fenced block."""
    blocks = [fenced(file) for file in turn.attachments if file.is_text]
    return "\n\n".join(part for part in (turn.content, *blocks) if part)
