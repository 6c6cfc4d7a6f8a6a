"""Checks that keep the README, CI and the package honest with each other."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The shell commands of the README's Quickstart, in order."""
    quickstart = (ROOT / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quickstart)


def test_ci_runs_the_readme_test_command():
    commands = readme_commands()
    assert len(commands) == 2, commands
    test_command = commands[1]
    assert "pytest" in test_command
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_constraints_pin_textual_exactly():
    pins = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^textual==\d+\.\d+\.\d+$", pins, re.MULTILINE)


def test_version_and_help_do_not_import_textual_or_websockets():
    probe = (
        "import sys\n"
        "from mfu_tui.cli import main\n"
        "for argv in (['--version'], ['--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, exit.code\n"
        "heavy = sorted(m for m in ('textual', 'websockets', 'aiohttp', 'msgspec') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "mfu-chat " in out
    assert "HEAVY []" in out


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "mfu_tui", "--version"], capture_output=True, text=True, check=True
    ).stdout
    from mfu_tui import __version__

    assert out.strip() == f"mfu-chat {__version__}"
