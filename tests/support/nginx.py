"""nginx as the WebSocket load balancer in front of several server nodes, for tests and benches.

``running_nginx(ports)`` writes a config into a temporary directory (pid,
logs and temp files all inside it), starts ``nginx -p DIR -c DIR/nginx.conf
-g 'daemon off;'`` on a free loopback port, waits until ``/healthz`` answers
through the proxy, and stops it at the end, even after a failure.

The config is what a deployment needs (docs/server.md, "Behind a reverse
proxy"), sized for a benchmark's thousands of connections: WebSocket upgrade
headers, hour-long read/send timeouts, no buffering, round robin over the
nodes, and a node that refuses connections, or answers 503 because it lost
its link to the other nodes, is skipped (``proxy_next_upstream error timeout
http_503``, ``max_fails=1 fail_timeout=2s``).
The binary comes from the Debian ``nginx-light`` package, which ``.ci/run``
installs when missing.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.programs import ForegroundProgram, find_program, free_port

#: Open files (and connections) nginx asks for; a proxied WebSocket takes two: client side, node side.
MAX_OPEN_FILES = 65536


def find_nginx() -> str:
    """The ``nginx`` executable (in /usr/sbin, often not on a user's PATH).

    Raises:
        MissingProgram: It is not installed.
    """
    return find_program("nginx", package="nginx-light", also=("/usr/sbin/nginx",))


def nginx_config(listen_port: int, upstream_ports: list[int], workdir: Path) -> str:
    """The nginx.conf of a WebSocket load balancer on ``listen_port`` over the nodes' ports."""
    # nginx cannot raise its limit past the hard one (even root, in a container); it would only warn.
    hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    open_files = MAX_OPEN_FILES if hard_limit == resource.RLIM_INFINITY else min(MAX_OPEN_FILES, hard_limit)
    # As root the workers would switch to "nobody", who cannot enter our 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    servers = "".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;\n" for port in upstream_ports)
    temp = workdir / "temp"
    return f"""\
{user}worker_processes 1;
worker_rlimit_nofile {open_files};
pid {workdir}/nginx.pid;
error_log stderr notice;

events {{
    worker_connections {open_files};
}}

http {{
    access_log off;
    # Errors about requests (a node down...) in a file of their own, written before the answer leaves.
    error_log {workdir}/error.log;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    upstream mfu_nodes {{
{servers}    }}

    server {{
        listen 127.0.0.1:{listen_port} backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        proxy_buffering off;
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout http_503;

        # /healthz, /readyz, /version.
        location / {{
            proxy_pass http://mfu_nodes;
        }}

        # An error line quotes the request, with a browser-style client's ?token=: only crit ones here.
        location /ws {{
            proxy_pass http://mfu_nodes;
            error_log {workdir}/error.log crit;
        }}
    }}
}}
"""


class Nginx(ForegroundProgram):
    """One nginx master (and its one worker) in the foreground.

    Args:
        binary: The ``nginx`` executable.
        upstream_ports: The nodes' ports on 127.0.0.1.
        workdir: An empty directory for the config, pid, temp files.
    """

    #: What the master logs (at "notice") once its listening sockets are bound and a worker runs.
    ready_line = "start worker process "

    def __init__(self, binary: str, upstream_ports: list[int], workdir: Path) -> None:
        super().__init__()
        self.binary = binary
        self.upstream_ports = list(upstream_ports)
        self.workdir = workdir
        self.port = 0

    @property
    def url(self) -> str:
        """The WebSocket URL through the load balancer."""
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 20.0) -> None:
        """Start on a free port; return once ``/healthz`` answered 200 through the proxy."""
        self.port = free_port()
        (self.workdir / "temp").mkdir(exist_ok=True)
        config = self.workdir / "nginx.conf"
        config.write_text(nginx_config(self.port, self.upstream_ports, self.workdir))
        self._spawn([self.binary, "-p", str(self.workdir), "-c", str(config), "-e", "stderr", "-g", "daemon off;"])
        if not self._wait_ready(timeout) or self.healthz(timeout) != 200:
            self.stop()
            raise RuntimeError(f"nginx did not start on port {self.port}:\n{self.log}")

    def healthz(self, timeout: float = 10.0) -> int | None:
        """The status of ``GET /healthz`` through the proxy (None if nothing answered)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status
        except OSError:
            return None
        finally:
            connection.close()


@contextlib.contextmanager
def running_nginx(upstream_ports: list[int]) -> Iterator[Nginx]:
    """nginx in front of ``upstream_ports``, stopped and its directory removed at the end.

    Raises:
        MissingProgram: nginx is not installed.
    """
    binary = find_nginx()
    workdir = Path(tempfile.mkdtemp(prefix="mfu-nginx-"))
    nginx = Nginx(binary, upstream_ports, workdir)
    try:
        nginx.start()
        yield nginx
    finally:
        nginx.stop()
        shutil.rmtree(workdir, ignore_errors=True)
