"""Snapshots of the app's main states at 80x24 and 120x36 (pytest-textual-snapshot).

The states come from ``tests/tui/scenes.py``, which ``screenshots/make.py``
draws too. Update the snapshots after an intended change with
``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tui.helpers import server_thread
from tests.tui.scenes import FAST_SERVER, SCENES, SIZES, SLOW_SERVER, Scene, Servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """One fast and one slow server for the module; each scene signs in as its own user."""
    with (
        server_thread(tmp_path_factory.mktemp("fast"), **FAST_SERVER) as fast,
        server_thread(tmp_path_factory.mktemp("slow"), **SLOW_SERVER) as slow,
    ):
        yield Servers(fast, slow)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("scene", SCENES, ids=[scene.name for scene in SCENES])
def test_snapshot(scene: Scene, size: tuple[int, int], servers: Servers, tmp_path: Path, snap_compare: Any) -> None:
    user = f"{scene.name}-{size[0]}x{size[1]}"
    app, run_before = scene.build(servers, tmp_path, user)
    assert snap_compare(app, run_before=run_before, terminal_size=size)
