"""The `mfu-chat` command line: the app's options, read without the parser of every subcommand."""

from __future__ import annotations

import pytest

from mfu_tui.cli import _app_arguments, build_parser

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
