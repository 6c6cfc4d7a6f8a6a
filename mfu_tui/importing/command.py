"""`mfu-chat import FILE`: a ChatGPT export's conversations brought in as chats, through the server in use.

The server is the one `mfu-chat` would use: the configured one with its
token, or else the local one, started as the app starts it (with the demo
provider: an import needs no model). Everything goes over the protocol
(``ChatClient.import_chat``), so the server checks, stores and counts it
like any other write. Every conversation is named by its export id, so
importing the same file again, or an import cut short, adds only what is
missing.

A bad file or setting is one line on stderr and exit status 2, before
anything starts; a refusal by the server (its storage quota) or a lost
server stops the import with one line and status 1, saying that running it
again goes on where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import sys
import tempfile
from pathlib import Path

from mfu_tui.client import ChatClient, ClientError
from mfu_tui.config import ConfigError, load_settings
from mfu_tui.importing.chatgpt import Conversation, Export, ExportError, read_export
from mfu_tui.importing.progress import Progress
from mfu_tui.local_server import LocalServer, LocalServerError
from mfu_tui.redaction import redact

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
#: Seconds to wait for the server to answer before saying it does not.
CONNECT_TIMEOUT = 20.0


@dataclasses.dataclass
class Tally:
    """What the import did so far."""

    imported: int = 0
    """Conversations added, or completed after an earlier import cut short."""
    already: int = 0
    """Conversations that were there whole: nothing added."""


def run_import(args: argparse.Namespace) -> int:
    """Import the export at ``args.file`` through the server in use; returns the exit status."""
    path = Path(args.file)
    try:
        settings = load_settings({"server": args.server, "token": args.token})
        export = read_export(path)
    except ConfigError as error:
        return _fail(str(error), EXIT_USAGE)
    except ExportError as error:
        return _fail(f"{path}: {error}", EXIT_USAGE)
    if not settings.embedded and not settings.token:
        return _fail(
            f"no token for {settings.server}: store one with `mfu-chat login --server {settings.server}`, "
            "or pass --token (or set MFU_TOKEN)",
            EXIT_USAGE,
        )
    for skipped in export.skipped:
        print(f"mfu-chat import: skipping {skipped.name}: {skipped.detail}", file=sys.stderr)
    tally = Tally()
    if not export.conversations:
        print(summary(tally, export))
        return 0
    local: LocalServer | None = None
    if settings.embedded:
        try:
            local = LocalServer.join(settings.paths, provider="demo")
        except LocalServerError as error:
            return _fail(str(error), EXIT_FAILED)
    url, token = (local.url, local.token) if local else (settings.server, settings.token)
    assert url is not None and token is not None  # checked above, or the local server's
    progress = Progress(len(export.conversations), sys.stderr)
    try:
        failure = asyncio.run(_import_all(url, token, export.conversations, tally, progress))
    except KeyboardInterrupt:
        progress.interrupt()
        print(summary(tally, export))
        return _fail("interrupted; run the same command again to import the rest", EXIT_INTERRUPTED)
    finally:
        if local is not None:
            local.leave()
    print(summary(tally, export))
    if failure is not None:
        progress.interrupt()
        return _fail(f"{failure}; run the same command again to go on where it stopped", EXIT_FAILED)
    return 0


async def _import_all(
    url: str, token: str, conversations: list[Conversation], tally: Tally, progress: Progress
) -> str | None:
    """Import each conversation in turn, counting in ``tally``; why it stopped early, or None."""
    # An outbox of its own: the import sends no message, and must not send the app's pending ones.
    with tempfile.TemporaryDirectory(prefix="mfu-import-") as outbox_dir:
        client = ChatClient(url, token, data_dir=Path(outbox_dir))
        await client.connect()
        try:
            try:
                await client.wait_connected(CONNECT_TIMEOUT)
            except TimeoutError:
                reason = client.state.last_error or client.state.reason or "no answer"
                return f"no connection to {redact(url)} within {CONNECT_TIMEOUT:g} s ({reason})"
            for conversation in conversations:
                result = await client.import_chat(
                    conversation.key,
                    conversation.title,
                    conversation.created_at,
                    conversation.updated_at,
                    conversation.messages,
                )
                if result.created or result.added:
                    tally.imported += 1
                else:
                    tally.already += 1
                progress.advance()
        except (ClientError, TimeoutError) as error:
            return f"stopped after {progress.done} of {progress.total} conversations: {error or 'no answer'}"
        finally:
            await client.close()
    return None


def summary(tally: Tally, export: Export) -> str:
    """The closing lines: how many were imported, were there already, were skipped and why."""
    skipped = len(export.skipped)
    reasons = collections.Counter(skip.reason for skip in export.skipped)
    why = ", ".join(f"{count} with {reason}" for reason, count in reasons.items())
    lines = [
        f"{_conversations(tally.imported)} imported, {tally.already} already there, {skipped} skipped"
        + (f" ({why})" if why else "")
        + "."
    ]
    attachments = sum(conversation.attachments for conversation in export.conversations)
    if attachments:
        lines.append(
            "1 image or file not imported: its place is marked in the text."
            if attachments == 1
            else f"{attachments} images or files not imported: their places are marked in the text."
        )
    return "\n".join(lines)


def _conversations(count: int) -> str:
    return f"{count} conversation{'s' if count != 1 else ''}"


def _fail(message: str, status: int) -> int:
    # A server URL may carry ?token=.
    print(f"mfu-chat import: {redact(message)}", file=sys.stderr)
    return status
