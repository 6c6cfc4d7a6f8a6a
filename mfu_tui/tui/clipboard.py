"""Copy to the clipboard of the terminal the user sits at, over SSH too.

Terminals take the OSC 52 escape sequence ("set the clipboard to this
base64 text"), and because it travels in the output stream it works across
SSH. tmux swallows unknown sequences unless they are wrapped in its DCS
passthrough, so inside tmux (``$TMUX`` set) the sequence is wrapped.
"""

from __future__ import annotations

import base64


def osc52_sequence(text: str, *, tmux: bool = False) -> str:
    """The escape sequence that sets the terminal's clipboard to ``text``.

    Args:
        text: What to copy.
        tmux: Wrap the sequence for tmux's passthrough
            (``ESC P tmux; ... ESC \\`` with inner escapes doubled).

    Returns:
        The sequence to write to the terminal.
    """
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    sequence = f"\x1b]52;c;{payload}\a"
    if tmux:
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence
