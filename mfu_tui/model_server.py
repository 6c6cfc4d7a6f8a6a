"""What the app's ``--provider`` and ``serve --provider`` take as the URL of an OpenAI-compatible model server.

Shared by the configuration and the server, which check it the same way;
it imports nothing of ours.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def is_model_server_url(value: str) -> bool:
    """True for an http(s) URL naming a host, with a port, if any, that is a number other than 0."""
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, a broken [IPv6] host
        return False
