"""The server processes the benches time answers from: the demo provider's, or ``bench.upstream``'s relayed.

Apart from ``bench.common`` so that the tools that only load a server (the
fake upstream, the load processes) do not import the server's code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from bench.common import start_upstream
from tests.support.server import ServerProcess

#: ``serve`` flags of the benches that time answers: no rate limit, quiet logs, and a send queue
#: that never refuses a client reading slower than a model that writes as fast as the socket takes it.
ANSWER_SERVE_FLAGS = ("--rate-limit", "1000000", "--log-level", "warning", "--send-queue-bytes", str(1 << 30))


@contextlib.contextmanager
def started(server: ServerProcess) -> Iterator[ServerProcess]:
    """``server`` started, and stopped on the way out."""
    server.start()
    try:
        yield server
    finally:
        server.terminate()
        server.wait()


@contextlib.contextmanager
def relayed_upstream(workdir: Path, *upstream_args: str) -> Iterator[ServerProcess]:
    """``bench.upstream *upstream_args``, and ``python -m mfu_tui serve --provider openai`` relaying it.

    Both are stopped on the way out.
    """
    upstream, base_url = start_upstream(*upstream_args)
    try:
        with started(
            ServerProcess(workdir, "--provider", "openai", *ANSWER_SERVE_FLAGS, env={"MFU_OPENAI_BASE_URL": base_url})
        ) as server:
            yield server
    finally:
        upstream.terminate()
        upstream.wait()
