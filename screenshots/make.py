"""Draw the README's screenshots: one SVG per app state and size.

The states are the scenes of ``tests/tui/scenes.py``, the same the snapshot
tests check, run against real servers started here. Run from the project
root after changing the look of the app::

    python screenshots/make.py            # every scene
    python screenshots/make.py answer     # only the named scenes
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual._doc import take_svg_screenshot

from tests.tui.scenes import SCENES, SIZES, scene_servers

OUT = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    chosen = [scene for scene in SCENES if not names or scene.name in names]
    unknown = set(names) - {scene.name for scene in SCENES}
    if unknown:
        print(f"unknown scene(s): {', '.join(sorted(unknown))}; known: {', '.join(s.name for s in SCENES)}")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for scene in chosen:
            for width, height in SIZES:
                size = f"{width}x{height}"
                work = Path(tmp) / f"{scene.name}-{size}"
                # Fresh servers for each drawing, so the user is "alice" and
                # sees only what the scene made.
                with scene_servers(work) as servers:
                    app, run_before = scene.build(servers, work, "alice")
                    svg = take_svg_screenshot(
                        app=app, run_before=run_before, terminal_size=(width, height), title="mfu-chat"
                    )
                path = OUT / f"{scene.name}-{size}.svg"
                path.write_text(svg, encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)}: {scene.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
