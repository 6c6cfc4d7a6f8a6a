"""The whole texts of cut messages loaded lately: a page that comes again gets them from here.

A message longer than ``SENT_MESSAGE_CHARS`` comes cut in a ``get_chat``
page, and its rest is loaded part by part (``ChatClient.load_whole_texts``).
The app loads the open chat again after every reconnect, so on a flaky
network the same megabytes would be loaded again each time. A text is kept
for one version of its message (its ``seq``, ``editedAt`` and status): an
edit, or an answer that grew, is loaded again.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from mfu_tui.protocol import StoredMessage

#: Characters kept at most (the least recently used go first): a few of the longest messages.
KEPT_CHARS = 16_000_000

_Version = tuple[str, int, datetime | None, str]


class WholeTexts:
    """Whole texts of cut messages, by message version, at most ``kept_chars`` characters of them.

    Args:
        kept_chars: Characters kept at most; a longer text is not kept.
    """

    def __init__(self, kept_chars: int = KEPT_CHARS) -> None:
        self._kept_chars = kept_chars
        self._texts: OrderedDict[_Version, str] = OrderedDict()
        self._chars = 0

    def get(self, message: StoredMessage) -> str | None:
        """The whole text of this version of ``message``, if it was loaded lately."""
        text = self._texts.get(_version(message))
        if text is not None:
            self._texts.move_to_end(_version(message))
        return text

    def put(self, message: StoredMessage, text: str) -> None:
        """Keep the whole ``text`` of this version of ``message``."""
        if len(text) > self._kept_chars:
            return
        old = self._texts.pop(_version(message), None)
        self._chars += len(text) - (len(old) if old is not None else 0)
        self._texts[_version(message)] = text
        while self._chars > self._kept_chars:
            _, dropped = self._texts.popitem(last=False)
            self._chars -= len(dropped)


def _version(message: StoredMessage) -> _Version:
    return (message.id, message.seq, message.edited_at, message.status)
