"""The user's earlier prompts, across chats and runs, for ``up``/``down`` and ``ctrl+r`` in the message box.

They live in ``prompts.jsonl`` beside the outbox: one JSON string a line,
oldest first, in a file only the user can read (0600; prompts are private).
A prompt is appended with one ``O_APPEND`` write, so several running apps
can share the file; a line cut short by a crash is skipped when read. The
file is rewritten with the newest ``KEEP`` prompts once it holds twice that.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from mfu_tui.client.safe_text import clean_text
from mfu_tui.tui.private_file import replace_private

log = logging.getLogger(__name__)

#: How many prompts are kept.
KEEP = 1000
#: The file is read only up to this size (a bigger one is someone else's doing: its end is read).
MAX_FILE_BYTES = 8 * 1024 * 1024
#: The file's name, in the app's data directory.
FILE_NAME = "prompts.jsonl"


class PromptHistory:
    """Earlier prompts, oldest first, kept in a private file.

    Example::

        history = PromptHistory(data_dir / FILE_NAME)
        history.add("explain this traceback")
        history.matching("trace")  # ["explain this traceback"]
    """

    def __init__(self, path: Path | None) -> None:
        """
        Args:
            path: The file; ``None`` keeps the history in memory only (tests, a read-only disk).
        """
        self.path = path
        self.entries: list[str] = self._load() if path is not None else []
        """The prompts, oldest first, without repeats in a row."""

    def add(self, prompt: str) -> None:
        """Remember a prompt just sent (not again if it repeats the last one)."""
        if not prompt.strip() or (self.entries and self.entries[-1] == prompt):
            return
        self.entries.append(prompt)
        if self.path is None:
            return
        try:
            self._append(json.dumps(prompt) + "\n")
            if len(self.entries) >= 2 * KEEP:
                self._rewrite()
        except OSError as error:
            # The prompt was sent all the same; only its recall is lost.
            log.warning("cannot write the prompt history %s: %s", self.path, error)

    def matching(self, words: str) -> list[str]:
        """The prompts that contain ``words`` (any case), newest first, each once."""
        needle = words.casefold()
        seen: set[str] = set()
        found = []
        for prompt in reversed(self.entries):
            if needle in prompt.casefold() and prompt not in seen:
                seen.add(prompt)
                found.append(prompt)
        return found

    def _load(self) -> list[str]:
        assert self.path is not None
        try:
            with open(self.path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size > MAX_FILE_BYTES:
                    file.seek(size - MAX_FILE_BYTES)
                    file.readline()  # most likely cut in the middle
                data = file.read(MAX_FILE_BYTES)
        except FileNotFoundError:
            return []
        except OSError as error:
            log.warning("cannot read the prompt history %s: %s", self.path, error)
            return []
        prompts: list[str] = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                prompt = json.loads(line)
                # A file is untrusted like the network: what is recalled is shown.
                prompt = clean_text(prompt) if isinstance(prompt, str) else ""
                if prompt and (not prompts or prompts[-1] != prompt):
                    prompts.append(prompt)
        return prompts[-KEEP:]

    def _append(self, line: str) -> None:
        assert self.path is not None
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)

    def _rewrite(self) -> None:
        assert self.path is not None
        self.entries = self.entries[-KEEP:]
        replace_private(self.path, "".join(json.dumps(prompt) + "\n" for prompt in self.entries).encode())
