"""Kill a client process with SIGKILL at random moments while it writes its outbox, and count what was lost.

Each round starts a client process (``tests/client/outbox_child.py``) on the
same data dir and the same account, hands it one to six messages of 8 to 60
KiB (a record of many pages: a write that a kill can stop half-way), and
kills it with SIGKILL in one of three ways, chosen at random:

- ``watch``: as soon as the journal has grown past a random byte of what the
  round writes (the harness watches its size in a tight loop on an open
  descriptor, so the kill follows the growth by microseconds and lands in the
  write, or just after it);
- ``confirmed``: after a random number of messages were confirmed, plus a
  random pause of up to 2 ms (before a write, between a write and its
  ``fsync``, while sending...);
- ``limit``: the child's file size limit (``RLIMIT_FSIZE``) is set at a
  random byte of what the round writes, so the kernel stops the write there,
  as a full disk does, and the child is killed once the journal reached it.
  This leaves for certain what a kill between two pages of a write leaves
  (a record cut short), which ``watch`` achieves only now and then: the
  kernel checks for a kill between the chunks it copies, and with the large
  folios of ext4 or a tmpfs file that has grown, one chunk is the whole record.

The client's data dir is on tmpfs (``/dev/shm``) when there is one, where a
fresh file grows page by page and ``watch`` cuts records more often.

The server is stopped (SIGSTOP) in two rounds out of three, so the messages
pile up in the journal as they do offline, and runs in the others, so that
they are sent, acknowledged and the journal emptied, with kills in between.
A message counts as promised once the child printed its ``clientMessageId``:
``send_message`` returned, so it must reach the server exactly once.

After each kill the journal is read as the next start reads it (nothing is
written) and every promised message must be pending there or stored on the
server (``missing_after_kill``). At the end a client on the same data dir
sends what is left, and the server's database is checked:

- lost: promised messages not stored (target 0);
- sent_twice: messages stored more than once (target 0);
- garbled: messages stored with another text than the one written (target 0);
- cut_by_kill, cut_by_limit: kills after which the journal ended in a record
  cut short (the case of issue 14; a run where both are 0 proved little).

Run by hand::

    python -m tests.reliability.outbox_kills --kills 1000 --seed 7

CI runs 30 kills (``tests/reliability/test_outbox_kills.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mfu_tui.client import Backoff, ChatClient
from mfu_tui.client.outbox import Outbox
from mfu_tui.protocol import Ack
from tests.support.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]

#: Seconds a child may take to start, and the final client to send what is left.
START_TIMEOUT = 30.0
DRAIN_TIMEOUT = 120.0
#: Seconds a mid-write round watches the journal before it kills anyway
#: (the server emptied the journal under it, say).
WATCH_LIMIT = 2.0
#: Sizes of a message's text, in bytes: several pages, under the 64 KiB frame limit.
SMALLEST, LARGEST = 8 * 1024, 60 * 1024


@dataclass
class OutboxKillReport:
    """Figures of one run."""

    kills: int = 0
    messages: int = 0
    """Messages handed to the child processes."""
    promised: int = 0
    """Messages whose ``send_message`` returned before the kill."""
    stored: int = 0
    """Distinct messages in the server's database at the end (promised or not)."""
    cut_by_kill: int = 0
    """Kills (``watch`` or ``confirmed``) after which the journal ended in a cut record."""
    cut_by_limit: int = 0
    """``limit`` kills after which the journal ended in a cut record."""
    online_rounds: int = 0
    modes: dict[str, int] = field(default_factory=dict)
    """Kills of each kind: ``watch``, ``confirmed``, ``limit``."""
    missing_after_kill: int = 0
    lost: int = 0
    sent_twice: int = 0
    garbled: int = 0
    left_pending: int = 0
    """Messages still in the outbox when the final client gave up (target 0)."""
    seconds: float = 0.0
    incidents: list[str] = field(default_factory=list)
    """What went wrong, one line each, to start the debugging from."""

    @property
    def clean(self) -> bool:
        """True when every promised message arrived exactly once, as written."""
        return self.missing_after_kill == self.lost == self.sent_twice == self.garbled == self.left_pending == 0


def message_text(name: str, size: int) -> str:
    """The text of message ``name``: its name, then filler made from it, ``size`` bytes in all."""
    filler = (name + " lorem ipsum ") * (size // (len(name) + 13) + 1)
    return f"{name}: {filler}"[:size]


def start_child(url: str, token: str, data_dir: Path, messages: Path) -> subprocess.Popen[str]:
    """A client process that sends each line of ``messages`` and prints each one's ``clientMessageId``."""
    with open(messages, encoding="utf-8") as stdin:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.client.outbox_child", url, token, str(data_dir), "--no-wait"],
            cwd=REPO,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )


def journals(data_dir: Path) -> list[Path]:
    """The outbox journals (one per slot) under ``data_dir``."""
    return sorted(data_dir.glob("outbox-*.jsonl"))


def kill_when_grown(child: subprocess.Popen[str], data_dir: Path, grown: int, *, limit: bool) -> None:
    """SIGKILL ``child`` as soon as its journal has grown ``grown`` bytes past its size now.

    With ``limit``, the child may not write past that byte (``RLIMIT_FSIZE``):
    its write stops there, and the kill follows.

    A busy loop on ``fstat``, not a sleep: the kill must follow the growth by
    microseconds to land inside the write. It gives up after ``WATCH_LIMIT``
    (the server emptied the journal under it, say) and kills then.
    """
    deadline = time.monotonic() + WATCH_LIMIT
    descriptor = None
    try:
        while descriptor is None and time.monotonic() < deadline and child.poll() is None:
            found = journals(data_dir)
            if found:
                descriptor = os.open(found[0], os.O_RDONLY)
        if descriptor is not None:
            target = os.fstat(descriptor).st_size + grown
            if limit:
                resource.prlimit(child.pid, resource.RLIMIT_FSIZE, (target, target))
            spins = 0
            while os.fstat(descriptor).st_size < target:
                spins += 1
                if spins % 4096 == 0 and (time.monotonic() > deadline or child.poll() is not None):
                    break
    finally:
        with contextlib.suppress(ProcessLookupError):  # a limited child may have died of its write error
            os.kill(child.pid, signal.SIGKILL)  # not Popen.kill: it polls first, microseconds too late
        if descriptor is not None:
            os.close(descriptor)


def kill_after(child: subprocess.Popen[str], confirmed: list[str], count: int, pause: float) -> None:
    """SIGKILL ``child`` once it confirmed ``count`` messages (read into ``confirmed``), ``pause`` s later."""
    assert child.stdout is not None
    while len(confirmed) < count and (line := child.stdout.readline()):
        confirmed.append(line.strip())
    until = time.perf_counter() + pause
    while time.perf_counter() < until:  # a busy wait: sleep's granularity is too coarse
        pass
    child.kill()


def stored_messages(db_path: Path) -> list[tuple[str, str]]:
    """(client_message_id, content) of every user message on the server."""
    if not db_path.exists():
        return []
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as connection:
        rows = connection.execute("SELECT client_message_id, content FROM messages WHERE role = 'user'")
        return [(str(cid), str(content)) for cid, content in rows]


def pending_ids(data_dir: Path) -> set[str]:
    """The messages pending in every journal, read as the next start reads them (nothing is written)."""
    ids: set[str] = set()
    for path in journals(data_dir):
        ids.update(entry.client_message_id for entry in Outbox(path).pending())
    return ids


@contextlib.contextmanager
def page_by_page_dir() -> Iterator[Path | None]:
    """A temporary directory on tmpfs (``/dev/shm``), if this machine has one, else ``None``.

    Where the client's journal goes: tmpfs copies a write in page by page and
    checks for a kill between pages, so a kill that follows the file's growth
    cuts the record. ext4 with large folios copies up to 2 MiB at once and
    updates the size once, so a cut there is rare (2 in 150 kills in issue
    14's review): the same code path, found far less often.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield None
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="mfu-outbox-kills-") as directory:
        yield Path(directory)


def run(kills: int, seed: int, workdir: Path, data_dir: Path | None = None) -> OutboxKillReport:
    """Run ``kills`` rounds and return the figures.

    Args:
        kills: How many client processes to kill.
        seed: Of the random choices; the same seed makes the same rounds.
        workdir: Where the server's database and the messages fed to the children go.
        data_dir: The client's data dir, where its journal is (default: under ``workdir``).
    """
    rng = random.Random(seed)
    report = OutboxKillReport()
    started = time.monotonic()
    data_dir = data_dir or workdir / "client"
    texts: dict[str, str] = {}  # message name -> text
    promised: dict[str, str] = {}  # clientMessageId -> message name
    missing: set[str] = set()
    server = ServerProcess(workdir, "--demo-words", "1", "--demo-delay-ms", "0", "--rate-limit", "1000000")
    server.start()
    assert server.process is not None
    token = server.token("alice")
    stopped = False
    try:
        for round_number in range(kills):
            online = rng.random() < 1 / 3
            if online == stopped:
                server.process.send_signal(signal.SIGCONT if online else signal.SIGSTOP)
                stopped = not online
            report.online_rounds += online
            names = [f"r{round_number}m{n}" for n in range(rng.randint(1, 6))]
            sizes = [rng.randint(SMALLEST, LARGEST) for _ in names]
            feed = workdir / "feed.txt"
            feed.write_text("".join(message_text(name, size) + "\n" for name, size in zip(names, sizes)))
            texts.update((name, message_text(name, size)) for name, size in zip(names, sizes))
            report.messages += len(names)

            child = start_child(server.url, token, data_dir, feed)
            assert child.stdout is not None
            if not select.select([child.stdout], [], [], START_TIMEOUT)[0] or child.stdout.readline() != "started\n":
                child.kill()
                child.wait()
                raise RuntimeError(f"round {round_number}: the client process did not start")
            confirmed: list[str] = []
            mode = rng.choice(["watch", "watch", "confirmed", "limit"])
            report.modes[mode] = report.modes.get(mode, 0) + 1
            if mode == "confirmed":
                kill_after(child, confirmed, rng.randrange(len(names)), rng.uniform(0, 0.002))
            else:
                kill_when_grown(child, data_dir, rng.randint(1, sum(sizes)), limit=mode == "limit")
            child.wait()
            report.kills += 1
            confirmed += [line.strip() for line in child.stdout if line.strip()]
            child.stdout.close()
            promised.update(zip(confirmed, names))  # the child sends its lines in order

            if any(path.read_bytes()[-1:] not in (b"", b"\n") for path in journals(data_dir)):
                if mode == "limit":
                    report.cut_by_limit += 1
                else:
                    report.cut_by_kill += 1
            stored = {cid for cid, _ in stored_messages(server.db_path)}
            now_missing = set(promised) - pending_ids(data_dir) - stored - missing
            for cid in sorted(now_missing):
                report.incidents.append(f"round {round_number}: {promised[cid]} ({cid}) neither pending nor stored")
            missing |= now_missing

        if stopped:
            server.process.send_signal(signal.SIGCONT)
            stopped = False
        report.left_pending = asyncio.run(_drain(server.url, token, data_dir))
        rows = stored_messages(server.db_path)
    finally:
        if stopped:
            server.process.send_signal(signal.SIGCONT)
        server.kill()

    report.promised = len(promised)
    report.missing_after_kill = len(missing)
    by_id = Counter(cid for cid, _ in rows)
    by_name = Counter(content.split(":", 1)[0] for _, content in rows)
    report.stored = len(by_name)
    report.lost = sum(1 for cid in promised if cid not in by_id)
    report.sent_twice = sum(count - 1 for count in by_name.values() if count > 1)
    report.garbled = sum(1 for _, content in rows if texts.get(content.split(":", 1)[0]) != content)
    for cid, name in promised.items():
        if cid not in by_id:
            report.incidents.append(f"lost: {name} ({cid})")
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def _drain(url: str, token: str, data_dir: Path) -> int:
    """Start a client on the data dir and wait until its outbox is empty; returns what is left in it."""
    acked = asyncio.Event()

    def on_frame(frame: object) -> None:
        if isinstance(frame, Ack):
            acked.set()

    client = ChatClient(url, token, data_dir=data_dir, backoff=Backoff(base=0.05, cap=0.3))
    client.on_message(on_frame)
    deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT
    try:
        await client.connect()
        while len(client.outbox) and (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            acked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acked.wait(), remaining)
        return len(client.outbox)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, page_by_page_dir() as data_dir:
        report = run(args.kills, args.seed, Path(workdir), data_dir)
    print(json.dumps({**asdict(report), "clean": report.clean}, indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
