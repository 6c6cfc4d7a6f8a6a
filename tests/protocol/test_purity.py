"""The protocol core is sans-I/O: importing it pulls in no I/O framework."""

import ast
import subprocess
import sys
from pathlib import Path

import mfu_tui.protocol

FORBIDDEN = ("asyncio", "websockets", "textual", "socket", "aiohttp", "sqlite3")


def test_protocol_sources_import_no_io_framework():
    package = Path(mfu_tui.protocol.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{source.name} imports {name}"


def test_importing_protocol_loads_no_io_framework():
    probe = "import sys, mfu_tui.protocol; print(sorted(m for m in %r if m in sys.modules))" % (FORBIDDEN,)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
