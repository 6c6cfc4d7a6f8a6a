"""The close-code table: which codes end retrying and which reconnect."""

import pytest

from mfu_tui.protocol import (
    CLOSE_CODES,
    CloseCode,
    describe_close,
    is_terminal,
    should_reconnect,
)


@pytest.mark.parametrize("code", [4401, 4403, 4410])
def test_auth_codes_are_terminal(code):
    assert is_terminal(code) and not should_reconnect(code)


@pytest.mark.parametrize("code", [1000, 1001, 1006, 1008, 1009, 1011, 1013, 4000])
def test_other_codes_reconnect(code):
    assert should_reconnect(code) and not is_terminal(code)


@pytest.mark.parametrize("code", [None, 1012, 3000, 4999])
def test_unknown_codes_and_no_close_frame_reconnect(code):
    assert should_reconnect(code)


def test_the_table_covers_every_code_of_the_brief():
    assert {1000, 1001, 1008, 1009, 1011, 1013, 4000, 4401, 4403} <= set(CLOSE_CODES)
    assert all(isinstance(code, CloseCode) for code in CLOSE_CODES)


def test_descriptions_are_plain_words():
    assert describe_close(4401) == "token invalid or expired (4401)"
    assert describe_close(1013, "maintenance") == "maintenance (1013)"
    assert describe_close(None) == "connection lost"
    assert describe_close(3999) == "closed (3999)"
