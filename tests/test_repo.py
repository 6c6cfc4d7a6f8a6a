"""Checks that keep the README, CI and the package honest with each other."""

import ast
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from graphlib import CycleError, TopologicalSorter
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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
    for name in ("constraints.in", "constraints.txt"):
        pins = (ROOT / name).read_text()
        assert re.search(r"^textual==\d+\.\d+\.\d+$", pins, re.MULTILINE), name


def locked_versions() -> dict[str, str]:
    """``constraints.txt`` as normalised name -> version; every line must be an exact pin."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_every_package_of_the_test_install():
    """What ``pip install -e '.[test]'`` brought in, transitively, is exactly what the lock says."""
    locked = locked_versions()
    installed = {}
    pending = [(Requirement("mfu-chat[test]"), "")]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        dist = distribution(name)
        for wanted in [""] + sorted(requirement.extras):
            if (name, wanted) not in installed:
                installed[name, wanted] = dist.version
                pending += [(Requirement(text), wanted) for text in dist.requires or []]
    unpinned = {name: version for (name, _), version in installed.items() if locked.get(name) != version}
    unpinned.pop("mfu-chat")
    assert unpinned == {}, "installed but not pinned at that version in constraints.txt (run .ci/lock.py)"


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


#: What the linter and the formatter look at: the code, not the docs.
LINTED = ["mfu_tui", "tests", "bench", "screenshots", ".ci"]


def test_the_code_passes_the_linter_and_is_formatted():
    """ruff at the locked release, with pyproject.toml's rules: in CI like every other check."""
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", *LINTED], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    layout = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *LINTED], cwd=ROOT, capture_output=True, text=True
    )
    assert layout.returncode == 0, layout.stdout + layout.stderr


#: What each layer of the package may import of the others (README, Architecture); those not named
#: here (cli, config, launch, importing, local_server) may import any. ``redaction`` is shared by all;
#: ``file_lock`` (the database's lock, which the server and the app's local server both take) and
#: ``model_server`` (the --provider URL, checked alike by the configuration) by the server.
#: They import nothing of ours.
LAYERS = {
    "redaction": set(),
    "file_lock": set(),
    "model_server": set(),
    "protocol": set(),
    "client": {"protocol", "redaction"},
    "server": {"protocol", "redaction", "file_lock", "model_server"},
    "tui": {"client", "protocol", "redaction"},
}


def package_imports() -> dict[str, set[str]]:
    """Each module of mfu_tui and the modules of mfu_tui it imports, wherever in the file.

    Imports inside functions count (they only hide a cycle); those under
    ``if TYPE_CHECKING:`` do not (they never run).
    """
    package = ROOT / "mfu_tui"
    modules = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
               for path in package.rglob("*.py")}  # fmt: skip

    def module_of(name: str) -> str | None:
        while name and name not in modules:  # `from a.b import c`: c is a module or a name in a.b
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        unrun = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in ast.walk(node)
        }
        imported: set[str | None] = set()
        for node in ast.walk(tree):
            if id(node) in unrun:
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mfu_tui"):
                imported |= {module_of(f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {module_of(alias.name) for alias in node.names if alias.name.startswith("mfu_tui")}
        graph[name] = {module for module in imported if module is not None and module != name}
    return graph


def test_no_module_of_the_package_imports_itself_back():
    graph = package_imports()
    assert "mfu_tui.tui.app" in graph and graph["mfu_tui.tui.app"]  # the scan found the imports
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        pytest.fail(f"an import cycle: {' -> '.join(error.args[1])}")


def test_each_layer_imports_only_the_layers_below_it():
    def layer(module: str) -> str:
        return module.split(".")[1] if "." in module else module

    crossings = {
        (module, imported)
        for module, imports in package_imports().items()
        for imported in imports
        if layer(module) in LAYERS and layer(imported) != layer(module) and layer(imported) not in LAYERS[layer(module)]
    }
    assert crossings == set()


def test_the_systemd_unit_of_the_docs_verifies():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The unit as installed, its ExecStart pointing at this install's mfu-chat (the docs' /opt path is not here).
    installed = Path(sys.executable).parent / "mfu-chat"
    unit = (ROOT / "docs" / "mfu-chat@.service").read_text()
    assert "/opt/mfu-chat/venv/bin/mfu-chat serve" in unit
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "mfu-chat@node-0.service"
        path.write_text(unit.replace("/opt/mfu-chat/venv/bin/mfu-chat", str(installed)))
        done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    # verify warns about unknown keys on stderr but still exits 0: any word from it is a finding.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def unit_service_settings() -> list[tuple[str, str]]:
    """The ``[Service]`` settings of docs/mfu-chat@.service, in order (a key may come more than once)."""
    unit = (ROOT / "docs" / "mfu-chat@.service").read_text()
    section = unit.split("[Service]\n", 1)[1].split("\n[", 1)[0]
    return [
        (key, value)
        for line in section.splitlines()
        if line and not line.startswith("#")
        for key, value in [line.split("=", 1)]
    ]


def test_the_unit_runs_a_single_node_on_loopback_with_its_database_in_the_state_directory(tmp_path):
    """The unit's command, in the environment systemd gives it when the environment file holds only the secret.

    As deploy.md's single node: no MFU_HOST, no database URL. The service user's
    home (``/nonexistent`` on the machine) is a directory of the test's here, so
    a database put there is seen, not written to the real ``/nonexistent``.
    """
    settings = unit_service_settings()
    state = tmp_path / "state"  # what systemd makes for StateDirectory=
    state.mkdir()
    state_path = "/var/lib/" + dict(settings)["StateDirectory"]
    environment = {
        name: value.replace(state_path, str(state))
        for key, setting in settings
        if key == "Environment"
        for name, value in [setting.split("=", 1)]
    }
    environment["MFU_JWT_SECRET"] = secrets.token_urlsafe(48)  # the environment file
    # systemd splits the command into words, then replaces ${NAME} in each (an unset one by nothing).
    words = dict(settings)["ExecStart"].split()
    command = [re.sub(r"\$\{(\w+)\}", lambda name: environment.get(name[1], ""), word) for word in words]
    command[0] = str(Path(sys.executable).parent / "mfu-chat")  # this install's, not the docs' /opt path
    command[command.index("--port") + 1] = "0"  # a free port
    process = subprocess.Popen(
        command,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "nonexistent"), **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = process.stdout.readline()  # the one line, or nothing once it exited
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert started.startswith("mfu-chat serve: listening on ws://127.0.0.1:"), stderr
    assert (state / "chat.sqlite3").is_file() and not (tmp_path / "nonexistent").exists()


def test_the_deploy_guide_s_environment_file_has_no_trailing_comments():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    block = guide.split("# /etc/mfu-chat/node-0.env\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Z_]+=\S+", line) for line in lines), lines


def test_the_documented_defaults_of_the_client_and_the_config_are_the_types():
    """docs/client.md's constructor and the README's config example show the defaults written in ClientSettings."""
    import dataclasses
    import inspect

    from mfu_tui.client import ChatClient, ClientSettings

    defaults = ClientSettings()
    api = (ROOT / "docs" / "client.md").read_text().split("## The API", 1)[1].split("```python\n", 1)[1]
    shown = dict(re.findall(r"(\w+)=([\w.]+)", api.split("```", 1)[0]))
    numbers = {field.name for field in dataclasses.fields(ClientSettings) if isinstance(field.default, float)}
    assert numbers <= shown.keys()
    for name in numbers:
        assert float(shown[name]) == getattr(defaults, name), name
    assert shown["keep_for_offline"] == str(inspect.signature(ChatClient).parameters["keep_for_offline"].default)
    example = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("```toml\n", 1)[1]
    file = dict(re.findall(r"^(heartbeat_\w+) = ([\d.]+)", example, re.MULTILINE))
    assert float(file["heartbeat_interval"]) == defaults.ping_interval
    assert float(file["heartbeat_timeout"]) == defaults.ping_timeout
