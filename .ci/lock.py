"""Write constraints.txt: every package of the test install, pinned exactly.

Run it with the Python that CI uses (3.11) after changing a dependency in
pyproject.toml or a pin in constraints.in, or to take newer releases on
purpose:

    python .ci/lock.py

pip itself resolves ``-e '.[test]'`` under constraints.in, without installing
anything (``--dry-run --report``), so the lock holds exactly what the README's
test command would install today: transitive packages included, and pip, which
.ci/run upgrades to the locked version first. Commit the result together with
a green run of .ci/run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "mfu-chat"
CI_PYTHON = (3, 11)


def resolve() -> dict[str, str]:
    """Package name -> version, as pip would install them for the test extra."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                "--report", str(report), "-c", str(ROOT / "constraints.in"),
                "pip", "-e", f"{ROOT}[test]",
            ],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    pins = {item["metadata"]["name"]: item["metadata"]["version"] for item in installs}
    pins.pop(PROJECT)
    return pins


def main() -> None:
    if sys.version_info[:2] != CI_PYTHON:
        sys.exit(f"run this with Python {'.'.join(map(str, CI_PYTHON))}, the one CI uses (markers depend on it)")
    pins = resolve()
    lines = [
        "# Every package of the test install, pinned: written by `python .ci/lock.py`",
        f"# (Python {sys.version_info.major}.{sys.version_info.minor}) from the test extra of pyproject.toml"
        " and constraints.in.",
        "# Do not edit by hand: change constraints.in or pyproject.toml and run it again.",
        *(f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda pin: pin[0].lower())),
    ]
    (ROOT / "constraints.txt").write_text("\n".join(lines) + "\n")
    print(f"constraints.txt: {len(pins)} packages pinned")


if __name__ == "__main__":
    main()
