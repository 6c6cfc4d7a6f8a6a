"""Which address the logs name: ``X-Forwarded-For`` is believed from trusted proxies only.

``tests/server/test_operator_logs.py`` checks it end to end through nginx;
these cover the header's shapes that nginx does not produce.
"""

from __future__ import annotations

import pytest

from mfu_tui.server import ConfigError, ServerConfig
from mfu_tui.server.client_address import client_address, parse_networks
from tests.support.server import new_secret

PROXIES = parse_networks(["10.0.0.0/24", "::1"])


@pytest.mark.parametrize(
    ("peer", "headers", "logged"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy of ours: its header is not believed
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # nginx, one hop
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # what the client wrote itself is left of it
        ("10.0.0.2", ["198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # two of our proxies in a row
        ("10.0.0.2", ["198.51.100.1", "10.0.0.7"], "198.51.100.1"),  # the same in two headers
        ("10.0.0.2", ["not-an-address, 10.0.0.7"], "10.0.0.7"),  # garbage: the last address we can vouch for
        ("10.0.0.2", [], "10.0.0.2"),  # no header: the proxy itself
        ("::1", ["2001:db8::5"], "2001:db8::5"),
        (None, ["198.51.100.1"], "unix"),
    ],
)
def test_the_client_is_the_first_address_from_the_right_that_is_not_a_trusted_proxy(peer, headers, logged):
    assert client_address(peer, headers, PROXIES) == logged


def test_a_trusted_proxy_that_is_not_a_network_is_refused_at_start():
    with pytest.raises(ConfigError, match="--trusted-proxy"):
        ServerConfig(secret=new_secret(), trusted_proxies=("10.0.0.0/33",))
