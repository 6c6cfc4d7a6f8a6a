"""Signing in again inside the app: the server refuses a token, the app asks for a new one, keeps what was typed."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from textual.widgets import Input

from mfu_tui.client import Problem, Status
from mfu_tui.config.credentials import save_login
from mfu_tui.protocol import Ack, Complete
from mfu_tui.tui.screens.sign_in import SignInScreen
from tests.support.server import running_server
from tests.tui.helpers import FrameWaiter, StateWaiter, frame_of, make_app, settle, stopped_by_auth, type_text

SIZE = (100, 32)


def keep(credentials: Path, url: str, token: str) -> str:
    """What the app is given to keep a token (``AppSettings.save_token``), writing to ``credentials``."""
    save_login(credentials, url, token)
    return "Kept."


async def test_a_refused_token_opens_the_sign_in_once_and_what_was_typed_is_sent_after(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    async with running_server(tmp_path) as server:
        app = make_app(
            server.url,
            server.token("alice", ttl=-120),
            tmp_path,
            save_token=partial(keep, credentials),
        )
        async with app.run_test(size=SIZE) as pilot:
            await StateWaiter(app.client, stopped_by_auth).wait()
            await settle(app, pilot)
            assert isinstance(app.screen, SignInScreen)
            assert app.client.state.problem is Problem.TOKEN_REFUSED
            assert not [n for n in app._notifications if n.title == "Signed out"]  # the screen is the one notice
            screen_text = " ".join(str(s.render()) for s in app.screen.query("Static"))
            assert (
                f"The server at {server.url} refused the token: auth refused: unauthorized: the token expired at"
                in (screen_text)
            )
            await pilot.press("escape")
            # Signed out, a message typed anyway: kept, and the status says so.
            await pilot.press(*"still here?", "enter")
            await settle(app, pilot)
            assert len(app.client.outbox) == 1
            assert str(app.status_dot.render()) == "● offline: signed out: 1 waiting"
            assert not isinstance(app.screen, SignInScreen)  # opened by itself once only
            assert "Sign in" in [command.title for command in app.get_system_commands(app.screen)]
            await pilot.press("f10")
            await settle(app, pilot)
            assert isinstance(app.screen, SignInScreen)
            await pilot.press(*"not-a-token", "enter")
            await pilot.pause()
            assert "that is not a token" in str(app.screen.query_one("#sign-in-problem").render())
            app.screen.query_one(Input).value = ""
            acked = FrameWaiter(app.client, frame_of(Ack))
            answered = FrameWaiter(app.client, frame_of(Complete))
            good = server.token("alice")
            await type_text(pilot, good)
            await pilot.press("enter")
            assert (await acked.wait()).client_message_id is not None
            await answered.wait()
            await settle(app, pilot)
            assert app.client.state.status is Status.CONNECTED and len(app.client.outbox) == 0
            [note] = [n for n in app._notifications if n.title == "Signed in"]
            assert note.message == f"Signed in to {server.url}. 1 waiting message(s) are being sent. Kept."
            assert json.loads(credentials.read_text())["tokens"] == {server.url: good}
            await app.client.close()


async def test_a_token_running_out_gives_one_sign_in_not_two_notices(tmp_path: Path) -> None:
    async with running_server(tmp_path, token_leeway=0) as server:
        app = make_app(server.url, server.token("alice", ttl=2), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            # Refused once connected, or at the first connect on a machine slow enough to start the
            # app in over 2 s: either way, one sign-in screen.
            await StateWaiter(app.client, stopped_by_auth).wait()
            await settle(app, pilot)
            assert isinstance(app.screen, SignInScreen)
            assert not [n for n in app._notifications if n.title == "Signed out"]
            assert "--server URL" not in " ".join(n.message for n in app._notifications)
            await app.client.close()


async def test_after_a_token_that_named_nobody_the_first_user_signed_in_takes_the_app(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        app = make_app(server.url, "garbage.token.here", tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await StateWaiter(app.client, stopped_by_auth).wait()
            await settle(app, pilot)
            assert isinstance(app.screen, SignInScreen)
            await pilot.press("escape")
            await pilot.press(*"typed while signed out", "enter")
            await settle(app, pilot)
            assert len(app.client.outbox) == 1 and app.client.user == ""
            await pilot.press("f10")
            await settle(app, pilot)
            acked = FrameWaiter(app.client, frame_of(Ack))
            await type_text(pilot, server.token("alice"))
            await pilot.press("enter")
            await acked.wait()  # the message typed before went, as alice's: before, "that token is for another user"
            await settle(app, pilot)
            assert app.client.user == "alice" and len(app.client.outbox) == 0
            assert str(app.query_one("#identity").render()).startswith("alice@127.0.0.1:")
            assert [n.title for n in app._notifications if n.title in ("Signed in", "Sign in")] == ["Signed in"]
            # Now it is alice's: a token for another user is refused, saying how to change user.
            await pilot.press("f10")
            await settle(app, pilot)
            await type_text(pilot, server.token("bob"))
            await pilot.press("enter")
            await settle(app, pilot)
            [note] = [n for n in app._notifications if n.title == "Sign in"]
            assert "run mfu-chat login with the new token" in note.message
            await app.client.close()
