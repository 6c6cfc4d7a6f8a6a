"""What the first answer's Markdown needs, made ready in a thread once the first screen is drawn.

Rich's Markdown and the app's widget for an answer are not imported before
the first frame (it would cost a sixth of it), and Pygments builds a
language's lexer (compiling its rules) the first time a code block of that
language is highlighted. Left to the first answer, that was about 40 ms of
its time in ``bench/render`` (the import, then the Python lexer as the
first code block streamed). Done here, in a daemon thread while the app
waits for its connection and for what the user types, it is ready when the
first answer comes.
"""

from __future__ import annotations

import threading

#: Languages whose lexers are built ahead: those models write most.
LEXERS = ("python", "bash", "javascript", "json")


def warm_up() -> None:
    """Import the answer's widget and build the lexers of ``LEXERS``."""
    from rich.syntax import Syntax

    import mfu_tui.tui.widgets.answer_body  # noqa: F401 (with it, markdown_segments and Rich's Markdown)

    for name in LEXERS:
        # As a code block is highlighted: Pygments' first lexer of a language compiles its rules.
        Syntax("", name).highlight("x = 1\n")


def start_warm_up() -> threading.Thread:
    """Run ``warm_up`` in a daemon thread (quitting never waits for it); the thread, started."""
    thread = threading.Thread(target=warm_up, name="mfu-chat warm-up", daemon=True)
    thread.start()
    return thread
