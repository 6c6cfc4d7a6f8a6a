"""The `mfu-chat` command line: the app's options, read without the parser of every subcommand."""

from __future__ import annotations

import subprocess

import pytest

from mfu_tui.cli import _app_arguments, build_parser
from tests.support.tmux import mfu_chat

APP_ARGUMENTS = [
    [],
    ["--server", "wss://chat.example.edu/ws", "--token", "t"],
    ["--server=ws://127.0.0.1:5001/ws", "--debug", "--log-file", "/tmp/x.log"],
    ["--serv", "ws://127.0.0.1:5001/ws", "--tok", "t"],  # abbreviated, as argparse allows
    ["--provider", "demo", "--server", "serve"],  # "serve" is the value of --server, not the command
    ["--debug", "--debug"],
]

NOT_ONLY_THE_APP = [
    ["serve"],
    ["--debug", "serve", "--port", "5002"],
    ["login", "--server", "wss://chat.example.edu/ws"],
    ["-h"],
    ["--help"],
    ["--server"],  # no value: the whole parser says so
    ["--bogus"],
    ["chat"],
]


@pytest.mark.parametrize("arguments", APP_ARGUMENTS)
def test_the_apps_options_read_alone_are_what_the_whole_parser_reads(arguments: list[str]) -> None:
    assert _app_arguments(arguments) == build_parser().parse_args(arguments)


@pytest.mark.parametrize("arguments", NOT_ONLY_THE_APP)
def test_anything_but_the_apps_options_goes_to_the_whole_parser(arguments: list[str]) -> None:
    assert _app_arguments(arguments) is None


@pytest.mark.parametrize(
    ("arguments", "command", "error"),
    [
        (["serve", "--port", "x"], "serve", "argument --port: invalid int value: 'x'"),
        (["serve", "--port", "0", "--bogus"], "serve", "unrecognized arguments: --bogus"),
        (["token"], "token", "the following arguments are required: --user"),
        (["admin"], "admin", "the following arguments are required: COMMAND"),
        (["admin", "backup"], "admin backup", "the following arguments are required: PATH"),
        (["admin", "export-user", "alice", "--bogus"], "admin export-user", "unrecognized arguments: --bogus"),
        (["migrate", "--db"], "migrate", "argument --db: expected one argument"),
    ],
)
def test_a_server_commands_mistake_is_one_line_and_where_to_look_not_its_whole_usage(arguments, command, error):
    done = subprocess.run([mfu_chat(), *arguments], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"mfu-chat {command}: error: {error}\nsee mfu-chat {command} --help\n"


def test_a_server_commands_help_is_still_its_whole_usage():
    done = subprocess.run([mfu_chat(), "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: mfu-chat serve [-h] [--host HOST] [--port PORT]")
    assert "--provider demo|openai|URL" in done.stdout
