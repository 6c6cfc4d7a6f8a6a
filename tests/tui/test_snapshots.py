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

from tests.tui.scenes import SCENES, SIZES, Scene, Servers, scene_servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The scenes' servers, once for the module; each scene signs in as its own user."""
    with scene_servers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("scene", SCENES, ids=[scene.name for scene in SCENES])
def test_snapshot(scene: Scene, size: tuple[int, int], servers: Servers, tmp_path: Path, snap_compare: Any) -> None:
    user = f"{scene.name}-{size[0]}x{size[1]}"
    app, run_before = scene.build(servers, tmp_path, user)
    assert snap_compare(app, run_before=run_before, terminal_size=size)
