"""The nginx configuration of the docs keeps tokens out of its logs, against a real nginx and a real node.

Browser-style clients send their token in the query (``/ws?token=...``).
nginx quotes the request line in every error line about a request, such as
the one it writes when a node is down (at every rolling restart).
"""

from __future__ import annotations

import http.client

from tests.support.nginx import running_nginx
from tests.support.server import ServerProcess


def status_of(port: int, target: str) -> int:
    """The status of ``GET target`` on 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_node_down_puts_no_query_token_in_nginx_s_error_log(tmp_path):
    node = ServerProcess(tmp_path)
    node.start()
    try:
        with running_nginx([node.port]) as nginx:
            node.kill()
            refused = status_of(nginx.port, "/ws?token=eyJhbGciOiJIUzI1NiJ9.not-a-real.token-in-the-query")
            health = status_of(nginx.port, "/healthz")
            errors = (nginx.workdir / "error.log").read_text()  # written before the answers left
    finally:
        node.kill()
    assert (refused, health) == (502, 502)
    assert "token" not in errors
    assert '"GET /healthz HTTP/1.1"' in errors  # other requests' failures are still logged
