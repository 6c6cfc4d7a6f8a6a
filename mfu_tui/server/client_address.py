"""The client's address for the logs: the peer, or ``X-Forwarded-For`` when the peer is a trusted proxy.

Anyone can send ``X-Forwarded-For``; only a proxy we run (``--trusted-proxy
CIDR``) is believed. Its header is read from the right, the entry the proxy
itself appended first: each entry added by another trusted proxy leads one
hop further, and the first address that is not a trusted proxy is the
client. Entries to its left were written by the client and are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """The networks of ``--trusted-proxy`` values (``10.0.0.0/8``, ``::1``, a bare address).

    Raises:
        ValueError: A value that is no address or network.
    """
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The address to log for a connection.

    Args:
        peer: The TCP peer's address (None for a Unix socket).
        forwarded_for: Every ``X-Forwarded-For`` header of the request, in order.
        trusted: The proxies whose header is believed.
    """
    current = peer or "unix"
    if not _trusted(current, trusted):
        return current
    hops = [entry.strip() for header in forwarded_for for entry in header.split(",") if entry.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:  # garbage in the header: the last address we could vouch for
            return current
        current = hop
        if not _trusted(hop, trusted):
            return hop
    return current


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
