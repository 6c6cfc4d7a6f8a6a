"""What this node runs: the package version and the build, for ``/version`` and ``mfu_build_info``."""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

#: Set by whoever packages a build (CI, an image) to name it; wins over the checkout's commit.
BUILD_ENV = "MFU_BUILD"


@dataclasses.dataclass(frozen=True)
class BuildInfo:
    """The version and build of the running code."""

    version: str
    """The installed package's version (``mfu_tui.__version__``, as pip recorded it)."""

    build: str
    """``$MFU_BUILD``, else the commit of the checkout installed from (``pip install -e``), else ``unknown``."""

    python: str
    """The interpreter's version."""


@functools.cache
def build_info() -> BuildInfo:
    """This process's ``BuildInfo``, looked up once."""
    try:
        version = importlib.metadata.version("mfu-chat")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "unknown"
    build = os.environ.get(BUILD_ENV) or _commit()
    return BuildInfo(version=version, build=build, python=platform.python_version())


def _commit() -> str:
    """The short commit of the git checkout the package runs from (``pip install -e``), if it is one.

    Only a checkout whose root holds the package counts: an installed copy
    that happens to sit inside some other repository (a virtualenv in a
    project) must not report that repository's commit.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():  # a directory in a clone, a file in a worktree
        return "unknown"
    try:
        found = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or a broken checkout
        return "unknown"
    return found.stdout.strip() or "unknown"
