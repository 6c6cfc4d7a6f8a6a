"""WebSocket close codes of protocol v1, and what a client does on each."""

from __future__ import annotations

import enum


class CloseCode(enum.IntEnum):
    """Close codes the server sends, with the client's reaction in ``CLOSE_CODES``."""

    NORMAL = 1000
    GOING_AWAY = 1001
    ABNORMAL = 1006  # never sent: the connection dropped without a close frame
    POLICY = 1008
    TOO_LARGE = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    SLOW_CONSUMER = 4000
    RESTARTING = 4012
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    ACCOUNT_DELETED = 4410


class CloseInfo:
    """What one close code means and whether the client should reconnect."""

    __slots__ = ("at_once", "code", "meaning", "reconnect")

    def __init__(self, code: CloseCode, meaning: str, reconnect: bool, at_once: bool = False) -> None:
        self.code = code
        self.meaning = meaning
        self.reconnect = reconnect
        #: Reconnect without waiting: the server asks it (another node takes the connection).
        self.at_once = at_once

    def __repr__(self) -> str:
        return f"CloseInfo({self.code!r}, {self.meaning!r}, reconnect={self.reconnect}, at_once={self.at_once})"


#: The table of docs/protocol.md. Every reconnect but those marked ``at_once``
#: goes through the client's backoff, so "reconnect" does not mean "at once".
CLOSE_CODES: dict[int, CloseInfo] = {
    info.code: info
    for info in (
        CloseInfo(CloseCode.NORMAL, "closed normally", reconnect=True),
        CloseInfo(CloseCode.GOING_AWAY, "server going away", reconnect=True),
        CloseInfo(CloseCode.ABNORMAL, "connection lost", reconnect=True),
        CloseInfo(CloseCode.POLICY, "policy violation", reconnect=True),
        CloseInfo(CloseCode.TOO_LARGE, "frame too large", reconnect=True),
        CloseInfo(CloseCode.INTERNAL_ERROR, "server error", reconnect=True),
        CloseInfo(CloseCode.TRY_AGAIN_LATER, "server busy, try again later", reconnect=True),
        CloseInfo(CloseCode.SLOW_CONSUMER, "too slow to keep up", reconnect=True),
        CloseInfo(CloseCode.RESTARTING, "server restarting", reconnect=True, at_once=True),
        CloseInfo(CloseCode.UNAUTHORIZED, "token invalid or expired", reconnect=False),
        CloseInfo(CloseCode.FORBIDDEN, "forbidden", reconnect=False),
        CloseInfo(CloseCode.ACCOUNT_DELETED, "the server's operator deleted this account's data", reconnect=False),
    )
}


def should_reconnect(code: int | None) -> bool:
    """True unless the code is terminal (4401, 4403, 4410). Unknown codes reconnect."""
    info = CLOSE_CODES.get(code) if code is not None else None
    return info.reconnect if info else True


def reconnect_at_once(code: int | None) -> bool:
    """True for the codes after which the client reconnects without its backoff's wait (4012)."""
    info = CLOSE_CODES.get(code) if code is not None else None
    return info.at_once if info else False


def is_terminal(code: int | None) -> bool:
    """True for codes after which the client must stop and ask for a new token."""
    return not should_reconnect(code)


def describe_close(code: int | None, reason: str = "") -> str:
    """A short human description, e.g. ``"token invalid or expired (4401)"``."""
    if code is None:
        return "connection lost"
    info = CLOSE_CODES.get(code)
    text = reason or (info.meaning if info else "closed")
    return f"{text} ({code})"
