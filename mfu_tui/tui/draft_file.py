"""The message being written, kept on disk: quitting, a dropped SSH connection or a crash loses none of it.

``draft.txt`` lives beside the prompt history, readable by the user only
(0600: it is private like the prompts). The message box writes what it holds
``SAVE_AFTER`` seconds after the last change, and as the app quits: all of
it, replaced whole (``replace_private``: the app killed at any moment leaves
the old text or the new, never half of one). It is removed
as soon as the box is emptied or its message taken (sent, or queued in the
outbox), and the next start puts it back in the box. A connection that
drops takes the app with it (``SIGHUP``) with at most ``SAVE_AFTER`` of
typing unsaved. Several apps running at once share the file: the last to
save is what comes back.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mfu_tui.client.safe_text import clean_text
from mfu_tui.tui.private_file import replace_private

log = logging.getLogger(__name__)

#: The file's name, in the app's data directory.
FILE_NAME = "draft.txt"

#: Seconds after the last change before the text is written: a write per pause in the typing, not per key.
SAVE_AFTER = 0.5

#: The most text kept, in UTF-8 bytes: a bigger paste is not written (and a bigger file is not read back).
MAX_BYTES = 1 << 20


class DraftFile:
    """The text of the message box, in a private file.

    Example::

        draft = DraftFile(data_dir / FILE_NAME)
        draft.save("a question I have not sent yet")
        draft.load()  # "a question I have not sent yet"
        draft.clear()
    """

    def __init__(self, path: Path | None) -> None:
        """
        Args:
            path: The file; ``None`` keeps nothing (tests, a read-only disk).
        """
        self.path = path

    def load(self) -> str:
        """The text kept, cleaned like anything read from a file (empty if there is none)."""
        if self.path is None:
            return ""
        try:
            with open(self.path, "rb") as file:
                data = file.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return ""
        except OSError as error:
            log.warning("cannot read the unsent message %s: %s", self.path, error)
            return ""
        if len(data) > MAX_BYTES:
            log.warning("the unsent message %s is too long to be ours: left as it is", self.path)
            return ""
        # A file is untrusted like the network: what comes back is shown.
        return clean_text(data.decode(errors="replace"))

    def save(self, text: str) -> None:
        """Keep ``text`` (nothing but spaces: keep nothing)."""
        if self.path is None:
            return
        if not text.strip():
            self.clear()
            return
        data = text.encode(errors="replace")
        if len(data) > MAX_BYTES:
            log.warning("the message being written is over %d bytes: not kept in %s", MAX_BYTES, self.path)
            return
        try:
            replace_private(self.path, data)
        except OSError as error:
            # The text is still in the box; only its keeping across a quit is lost.
            log.warning("cannot keep the unsent message in %s: %s", self.path, error)

    def clear(self) -> None:
        """Keep nothing: the message was taken, or the box emptied."""
        if self.path is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("cannot remove the unsent message %s: %s", self.path, error)
