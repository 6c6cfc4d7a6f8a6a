"""Cutting a conversation to import into the entries and frames of ``import_chat``.

A message longer than ``IMPORT_PIECE_CHARS`` becomes several entries (the
later ones ``continued``), and the entries are sent in parts, each frame
within ``MAX_FRAME_BYTES``. Pure functions: the client sends what they make.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from mfu_tui.protocol import IMPORT_PIECE_CHARS, MAX_FRAME_BYTES, ImportChat, ImportedMessage, encode


def import_entries(messages: Sequence[ImportedMessage]) -> list[ImportedMessage]:
    """The entries of ``messages`` (whole, any length): each message's text in pieces of ``IMPORT_PIECE_CHARS``.

    Empty messages are left out: an entry holds at least one character.
    """
    entries = []
    for message in messages:
        text = message.content
        for start in range(0, len(text), IMPORT_PIECE_CHARS):
            piece = text[start : start + IMPORT_PIECE_CHARS]
            if start == 0:
                entries.append(msgspec.structs.replace(message, content=piece, continued=False))
            else:
                entries.append(ImportedMessage(role=message.role, content=piece, continued=True))
    return entries


def next_part(frame: ImportChat, entries: Sequence[ImportedMessage], first: int) -> ImportChat:
    """``frame`` carrying entries from ``first`` on: as many as one frame holds, and at least one.

    Args:
        frame: The conversation's ``import_chat``, its ``messages`` and ``first`` to be replaced.
        entries: All the conversation's entries (``frame.total`` of them).
        first: The index of the part's first entry.
    """
    # Measured with the largest ``first`` there can be, so the real frame is no longer.
    room = MAX_FRAME_BYTES - len(encode(msgspec.structs.replace(frame, first=frame.total, messages=[])))
    end = first
    while end < len(entries):
        room -= len(msgspec.json.encode(entries[end])) + 1  # and the comma before it
        if room < 0 and end > first:
            break
        end += 1
    return msgspec.structs.replace(frame, first=first, messages=list(entries[first:end]))
