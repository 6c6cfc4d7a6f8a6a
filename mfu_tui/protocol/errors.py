"""The one exception the protocol layer raises."""


class ProtocolError(ValueError):
    """A frame could not be decoded or does not follow protocol v1.

    The message is written for people and names the problem, for example
    ``'chatId' must be a string, got int``. The server sends it back to the
    peer in a ``bad_request`` error frame, so it never contains internals.
    """
