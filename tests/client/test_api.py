"""The public surface the app and library users rely on."""

import dataclasses
import socket
import typing

import mfu_tui.client as client_package
from mfu_tui.client import ChatClient, ClientSettings, Status, WebSocketManager
from mfu_tui.client.settings import ClientOptions


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_contract_names_are_exported():
    for name in (
        "ChatClient",
        "WebSocketManager",
        "ConnectionState",
        "Status",
        "ClientError",
        "RequestError",
        "MessageReloaded",
        "ClientSettings",
    ):
        assert name in client_package.__all__
    assert WebSocketManager is ChatClient


def test_the_client_does_not_import_textual():
    import subprocess
    import sys

    probe = "import sys, mfu_tui.client; print('textual' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_the_client_takes_its_settings_whole_and_its_keywords_still_work(tmp_path):
    hints = typing.get_type_hints(ClientOptions)
    assert hints == {
        field.name: typing.get_type_hints(ClientSettings)[field.name] for field in dataclasses.fields(ClientSettings)
    }
    url = "ws://127.0.0.1:9/ws"
    assert ChatClient(url, "t", data_dir=tmp_path).settings == ClientSettings(data_dir=tmp_path)
    given = ClientSettings(data_dir=tmp_path, ping_timeout=3.0, request_timeout=4.0)
    assert ChatClient(url, "t", given).settings is given
    # The keywords of the seed's API win over the settings given whole.
    client = ChatClient(url, "t", given, ping_interval=0.5, request_timeout=1.0)
    assert client.settings == ClientSettings(
        data_dir=tmp_path, ping_interval=0.5, ping_timeout=3.0, request_timeout=1.0
    )


async def test_unsubscribed_callbacks_are_not_called_again(make_client):
    client, events = make_client(f"ws://127.0.0.1:{closed_port()}/ws", "token")
    kept, dropped = [], []
    client.on_state(kept.append)
    unsubscribe = client.on_state(dropped.append)
    unsubscribe()
    unsubscribe()  # harmless twice
    await client.connect()
    state = await events.wait_status(Status.RECONNECTING)
    assert state.last_error == "connection refused"
    assert kept and dropped == []


async def test_a_failing_callback_does_not_stop_the_worker(make_client):
    client, events = make_client(f"ws://127.0.0.1:{closed_port()}/ws", "token")

    def broken(state):
        raise RuntimeError("a bug in the UI")

    client.on_state(broken)
    await client.connect()
    await events.wait_for(lambda: client.backoff.failures >= 2)
    assert client.state.status is Status.RECONNECTING
