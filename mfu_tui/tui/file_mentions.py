"""``@path`` in a message: the files it names, attached when the message is sent.

A word that starts with ``@`` and names a file that exists (``~`` expanded,
relative to the working directory) is a file to attach; any other ``@word``
(a name, an address) is only text. The text is sent as typed: the model
reads the ``@path`` and finds the file after it, headed by its name.
"""

from __future__ import annotations

import re
from pathlib import Path

from mfu_tui.client.attachments import Attachment, read_attachment

#: ``@`` at the start of a word, and the rest of the word.
_MENTION = re.compile(r"(?<!\S)@(\S+)")


def mentioned_paths(text: str) -> list[str]:
    """The ``@path`` words of ``text`` that name an existing file, each once, in order."""
    found: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        candidate = match.group(1)
        if Path(candidate).expanduser().is_file():
            found[candidate] = None
    return list(found)


def mentioned_files(text: str) -> list[Attachment]:
    """The files ``text`` names with ``@path``, read whole.

    Raises:
        AttachmentError: a named file cannot be attached (unreadable, binary...).
    """
    return [read_attachment(path) for path in mentioned_paths(text)]
