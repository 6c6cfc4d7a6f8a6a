"""What the app needs to start: the server, the token, the client's settings and the user's choices.

One type per concern, each default written once: ``ClientSettings`` (the
heartbeat, the timeouts, the data directory) is the client's, ``AppChoices``
(theme, keys, new chats...) the app's. The config layer builds both from the
file, the environment and the flags, and ``mfu_tui/launch.py`` hands them
over whole with the server it connects to.

Nothing here imports Textual, so reading the configuration stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mfu_tui.client import ClientSettings
from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import ChatSettings, unverified_claims, user_of
from mfu_tui.tui.advice import Advice

if TYPE_CHECKING:  # the client's module (with websockets) is imported after the first frame
    from mfu_tui.client.client import Relocate


@dataclass
class AppChoices:
    """What the user chose for the app: the config file's settings of the app, and those the app keeps there."""

    theme: str = "textual-dark"
    """The Textual theme (``textual-dark``, ``nord``, ``gruvbox``...)."""
    sidebar_width: int = 24
    """Columns of the chat list (``alt+left`` / ``alt+right`` change it)."""
    model: str | None = None
    """The model for new chats; ``None`` lets the server choose."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id to keys, to remap keys (see the help screen, F1)."""
    new_chat: ChatSettings = field(default_factory=ChatSettings)
    """The system prompt and parameters of the chats created here (the config's ``[new_chat]``)."""


@dataclass(frozen=True)
class StartedServer:
    """The server ``AppSettings.start_server`` started or joined (the local one), and what to say of it."""

    url: str
    """Its WebSocket URL."""
    token: str
    """A token for the user ``AppSettings.user`` names."""
    label: str
    """What the header says from now on (``local · demo model``)."""
    notice: Advice | None = None
    """What to say once about where the answers come from, if anything."""


class ServerNotStarted(Exception):
    """``AppSettings.start_server`` could not start the server; the message says why, in one line."""


@dataclass
class AppSettings:
    """Settings of the terminal app."""

    url: str | None
    """The server's WebSocket URL, e.g. ``ws://127.0.0.1:5001/ws``; ``None`` when ``start_server`` gives it."""
    token: str | None
    """The JWT sent to the server; ``None`` when ``start_server`` gives it."""
    client: ClientSettings = field(default_factory=ClientSettings)
    """The client's heartbeat, timeouts and data directory (where it keeps its outbox)."""
    choices: AppChoices = field(default_factory=AppChoices)
    """The theme, the keys, the model and the settings of new chats."""
    account: str | None = None
    """Names the outbox and read cache instead of ``url`` (the local server's port changes each start)."""
    user: str | None = None
    """Whose outbox and read cache the app opens before it has a token (the local server still starting)."""
    relocate: Relocate | None = None
    """Where the server went after a failed attempt to connect (the local server started again), if it moved."""
    start_server: Callable[[], StartedServer] | None = None
    """Starts or joins the local server, when none is configured: called in a thread after the first frame
    (it may take seconds), and again by the reconnect key if it raised ``ServerNotStarted``."""
    export_dir: Path = field(default_factory=Path.cwd)
    """Where exported chats are written."""
    plain: bool | None = None
    """Words instead of coloured symbols; ``None`` decides from the terminal."""
    ascii_only: bool | None = None
    """Draw nothing but ASCII (and words for the dot); ``None`` decides from the terminal."""
    colour: bool | None = None
    """Write colour escapes; ``None`` decides from the terminal (none for ``TERM=dumb``)."""
    cursor_blink: bool = True
    """Blink the text cursor in the message box."""
    window: int = 12
    """How many messages get widgets when a chat opens, and per load of older ones.

    Each message is a few widgets to mount and lay out (about 6 ms each here), so this
    bounds the time to open a chat whatever its length."""
    server_label: str | None = None
    """What the header says instead of ``user@host`` (``local`` until the local server said more)."""
    save_token: Callable[[str, str], str] | None = None
    """Keeps a token given in the app's sign-in for the next runs (server, token), and says in a
    sentence what the next run will use; raises ``ValueError`` with the reason when it cannot.
    ``None``: for the run only."""
    remember: Callable[[str, str | int], str] | None = None
    """Keeps a choice made in the app (``theme``...) for the next runs: (setting, value) to a
    sentence saying where it went; raises ``ValueError`` with the reason when it cannot.
    ``None``: choices last the run."""
    report_crash: Callable[[str], str] | None = None
    """Keeps the traceback of an error nothing caught (in the log file) and returns where it
    went; raises ``OSError`` when it cannot. ``None``: Textual prints the traceback."""

    @property
    def identity(self) -> str:
        """The header's words for the connection: ``server_label``, else ``user@host:port``.

        The port is part of it: a wrong one is the commonest mistake. A token
        that names no user (not a JWT) leaves ``host:port`` alone. The user
        comes from the token and the host from the settings: neither is ours,
        so both are cleaned before they reach the screen.
        """
        if self.server_label:
            return clean_text(self.server_label)
        address = urlsplit(self.url or "").netloc.rpartition("@")[2] or "?"  # never a user:password@
        user = user_of(unverified_claims(self.token or "") or {})
        return clean_text(f"{user}@{address}" if user else address)
