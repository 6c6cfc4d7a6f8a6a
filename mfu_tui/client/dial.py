"""One connection attempt, and what its failure means in words a user can act on.

``dial`` opens the WebSocket (websockets' own pings off: the client's JSON
heartbeat measures the round trip the UI shows) and turns each way it can
fail into ``Stop`` (retrying cannot help: a refused token, an address that
is not a chat server, ``wss://`` to a server without TLS) or ``Failed``
(this attempt failed; the worker tries again after its backoff).
"""

from __future__ import annotations

import logging
import socket
import ssl
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from mfu_tui.client.state import Problem
from mfu_tui.protocol import MAX_SERVER_FRAME_BYTES
from mfu_tui.redaction import redact, redacting_logger

log = logging.getLogger("mfu_tui.client")

#: HTTP answers to the upgrade that a retry may cure: a timeout, too many connections,
#: a server or proxy starting or overloaded. Any other means the address is not a chat server.
PASSING_STATUSES = {408, 425, 429, 500, 502, 503, 504}

#: websockets' own debug log, with bearer tokens and ``token=`` values hidden.
_wire_log = redacting_logger("mfu_tui.client.wire")


class Stop(Exception):
    """The worker must stop: retrying cannot help.

    Args:
        problem: The kind of reason, for the UI to act on.
        reason: What happened and what to do, in words.
    """

    def __init__(self, problem: Problem, reason: str) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason


class Failed(Exception):
    """One connection attempt failed. The message says why."""


async def dial(url: str, token: str, open_timeout: float) -> ClientConnection:
    """One connection attempt to ``url`` with ``token`` in the ``Authorization`` header (never logged).

    Raises:
        Stop: retrying cannot help (auth refused, invalid address).
        Failed: this attempt failed; the message says why in plain words.
    """
    log.info("connecting to %s", redact(url))
    try:
        return await connect(
            url,
            proxy=None,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=open_timeout,
            ping_interval=None,  # our JSON heartbeat measures the RTT the UI shows
            close_timeout=2.0,
            max_size=MAX_SERVER_FRAME_BYTES,
            logger=_wire_log,
        )
    except InvalidStatus as error:
        status = error.response.status_code
        body = " ".join(error.response.body.decode(errors="replace").split())[:120]
        if status in (401, 403):
            raise Stop(Problem.TOKEN_REFUSED, f"auth refused: {body or f'HTTP {status}'}") from None
        if status not in PASSING_STATUSES:
            # A wrong path or port stays wrong: retrying forever would only hide it.
            where = "check the path, usually /ws" if status == 404 else "check the port and the path, usually /ws"
            raise Stop(
                Problem.NO_WEBSOCKET, f"no WebSocket endpoint at {redact(url)} (HTTP {status}): {where}"
            ) from None
        # The server's words say more than the number (429: too many connections).
        raise Failed(f"server answered HTTP {status}" + (f": {body}" if body else "")) from None
    except InvalidURI:
        raise Stop(Problem.BAD_ADDRESS, f"invalid server address {redact(url)}{_scheme_hint(url)}") from None
    except TimeoutError:
        raise Failed(f"no answer within {open_timeout:g} s") from None
    except ConnectionRefusedError:
        raise Failed("connection refused") from None
    except socket.gaierror:
        raise Failed("unknown host") from None
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        if url.startswith("wss://") and isinstance(error, (ssl.SSLError, ConnectionResetError)):
            # A server without TLS answers a TLS greeting with garbage or a reset; that stays so.
            raise Stop(
                Problem.TLS_MISMATCH,
                f"TLS handshake with {redact(url)} failed ({_reset_words(error)}): "
                "if the server has no TLS, use ws:// instead of wss://",
            ) from None
        raise Failed(reason) from None
    except InvalidHandshake as error:
        raise Failed(f"handshake failed: {error}") from None


def _scheme_hint(url: str) -> str:
    """What to write instead of an ``http(s)://`` address; ``""`` for any other."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return f": use {'wss' if scheme == 'https' else 'ws'}:// instead of {scheme}://"
    return ""


def _reset_words(error: OSError) -> str:
    """An ``OSError`` of a TLS greeting in words, not a class name."""
    if isinstance(error, ConnectionResetError):
        return "the server reset the connection"
    return getattr(error, "reason", None) or error.strerror or str(error) or "no TLS answer"
