"""Copy to the clipboard of the terminal the user sits at, over SSH too.

Terminals take the OSC 52 escape sequence ("set the clipboard to this
base64 text"), and because it travels in the output stream it works across
SSH. Inside tmux (``$TMUX`` set) it is written twice: as is, for tmux's
own clipboard (``set-clipboard on``, which also passes it on to the
terminal), and wrapped in tmux's DCS passthrough, for a tmux that lets it
through (``allow-passthrough on``, or any before 3.3). Since tmux 3.3 each
is dropped unless its option is on, and users turn on one or the other.
"""

from __future__ import annotations

import base64


def osc52_sequence(text: str, *, tmux: bool = False) -> str:
    """The escape sequence that sets the terminal's clipboard to ``text``.

    Args:
        text: What to copy.
        tmux: Follow the sequence with a copy wrapped for tmux's passthrough
            (``ESC P tmux; ... ESC \\`` with inner escapes doubled).

    Returns:
        The sequence to write to the terminal.
    """
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    sequence = f"\x1b]52;c;{payload}\a"
    if tmux:
        return sequence + "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence
