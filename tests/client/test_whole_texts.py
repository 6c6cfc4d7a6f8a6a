"""The whole texts of cut messages kept in memory: by version, bounded."""

from datetime import UTC, datetime

import msgspec

from mfu_tui.client.whole_texts import WholeTexts
from mfu_tui.protocol import StoredMessage

WHEN = datetime(2026, 12, 6, tzinfo=UTC)


def cut(message_id: str, seq: int = 9) -> StoredMessage:
    """An answer that came cut in a page."""
    return StoredMessage(
        id=message_id, role="assistant", content="start", created_at=WHEN, status="complete", seq=seq, truncated=True
    )


def test_a_text_is_kept_for_its_version_only():
    texts = WholeTexts()
    texts.put(cut("m1"), "the whole text")
    assert texts.get(cut("m1")) == "the whole text"
    assert texts.get(cut("m1", seq=10)) is None  # the answer grew
    assert texts.get(msgspec.structs.replace(cut("m1"), edited_at=WHEN)) is None  # edited
    assert texts.get(cut("m2")) is None


def test_the_least_recently_used_go_first_past_the_bound_and_a_text_over_it_is_not_kept():
    texts = WholeTexts(kept_chars=10)
    texts.put(cut("m1"), "aaaa")
    texts.put(cut("m2"), "bbbb")
    assert texts.get(cut("m1")) == "aaaa"  # used: m2 is the older now
    texts.put(cut("m3"), "cccc")
    texts.put(cut("m4"), "x" * 11)
    assert [texts.get(cut(m)) for m in ("m1", "m2", "m3", "m4")] == ["aaaa", None, "cccc", None]
