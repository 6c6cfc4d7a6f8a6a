"""The rules of ``ConversationModel``, as plain code: no app, no server."""

from __future__ import annotations

from mfu_tui.tui.conversation_model import ConversationModel


def test_what_comes_about_a_loading_chat_is_held_and_released_in_order_once_it_loaded() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.open("c1")
    assert chats.hold("c1", "chunk 1") and chats.hold("c1", "chunk 2") and chats.hold("c1", "end")
    assert not chats.hold("c2", "about another chat")  # shown (or not) at once, not held
    assert chats.loaded("c1") == ["chunk 1", "chunk 2", "end"]
    assert chats.loading is None
    assert not chats.hold("c1", "after the load")  # shown at once now
    assert chats.loaded("c1") is None  # a second answer to one load changes nothing


def test_a_chat_opened_while_another_loads_drops_what_was_held_for_the_first() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.open("c1")
    chats.hold("c1", "for c1")
    chats.open("c2")
    assert chats.loaded("c1") is None  # the first chat's page came late: not shown
    assert not chats.hold("c1", "late")
    assert chats.hold("c2", "for c2")
    assert chats.loaded("c2") == ["for c2"]


def test_opening_the_open_chat_again_starts_its_load_afresh() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.open("c1")
    chats.hold("c1", "before")
    chats.open("c1")  # reloaded, as after a reconnect: its new page has what was held
    assert chats.loaded("c1") == []


def test_a_chat_that_could_not_load_releases_what_was_held_for_it() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.open("c1")
    chats.hold("c1", "a")
    chats.hold("c1", "b")
    assert chats.not_loaded("c2") == []  # not the chat loading: nothing released
    assert chats.loading == "c1"
    assert chats.not_loaded("c1") == ["a", "b"]
    assert chats.loading is None


def test_the_running_answer_is_kept_per_chat_and_the_open_chat_s_is_generating() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.answer_runs("c1", "a1")
    chats.answer_runs("c2", "a2")
    assert chats.generating is None  # no chat open
    chats.open("c1")
    assert chats.generating == "a1"
    chats.open("c2")
    assert (chats.generating, chats.running("c1")) == ("a2", "a1")
    chats.answer_runs("c2", None)
    assert chats.generating is None and chats.running("c1") == "a1"
    chats.answer_runs("c2", None)  # an end heard twice changes nothing
    assert chats.running(None) is None
    chats.start_new()
    assert chats.generating is None and chats.running("c1") == "a1"  # it still runs there
    assert chats.is_running("a1") and not chats.is_running("a2") and not chats.is_running(None)


def test_the_first_message_of_a_new_chat_opens_the_chat_the_server_makes_for_it() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.sending("m1")
    assert chats.creating == "m1"
    assert not chats.created("m0", "other")  # another terminal's new chat
    assert chats.open_chat is None
    assert chats.created("m1", "c1")
    assert (chats.open_chat, chats.creating) == ("c1", None)
    assert not chats.created("m1", "c1")  # its ack after its chat_created: opened once


def test_a_message_sent_in_an_open_chat_creates_nothing() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.open("c1")
    chats.sending("m1")
    assert chats.creating is None and not chats.created("m1", "c9")


def test_a_new_chat_whose_first_message_was_not_kept_waits_for_the_next() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.sending("m1")
    chats.not_sent("m2")  # not the one creating
    assert chats.creating == "m1"
    chats.not_sent("m1")
    assert chats.creating is None and not chats.created("m1", "c1")


def test_opening_a_chat_or_a_new_one_forgets_the_chat_being_created() -> None:
    chats: ConversationModel[str] = ConversationModel()
    chats.sending("m1")
    chats.open("c1")
    assert chats.creating is None and not chats.created("m1", "c2")
    assert chats.open_chat == "c1"
    chats.hold("c1", "x")
    chats.start_new()
    assert (chats.open_chat, chats.loading, chats.creating) == (None, None, None)
    assert chats.loaded("c1") is None
