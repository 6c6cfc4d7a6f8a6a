"""Search snippets: the words around a match, as the plain text a Markdown message shows."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mfu_tui.protocol.search import BLOCKS_APART, SNIPPET_CHARS, WORD, search_words, snippet

ANSWER = """## Setup

> Before you start

Install it first. It takes
a minute:

1. run `pip install **mfu-chat**`
2. [x] open the [guide](https://example.edu/guide) and ![the logo](logo.png)
- *mind* the _details_, __twice__ and ~~never~~ \\*once\\*

---

```python
# a comment, not a heading
print(2*3*4)  # **not bold**
```

| key | what |
|:---|---:|
| `a|b` | both |
"""


def test_a_snippet_shows_the_text_of_the_markdown_its_blocks_apart():
    piece, highlights = snippet(ANSWER, ["setup"])
    assert piece == (
        "Setup · Before you start · Install it first. It takes a minute: · run pip install **mfu-chat** · open the"
        " guide and the logo · mind the details, twice and…"
    )
    assert [piece[start:end] for start, end in highlights] == ["Setup"]
    piece, _ = snippet(ANSWER, ["never"])
    assert "· mind the details, twice and never *once* · # a comment" in piece


def test_code_is_kept_as_written_and_a_table_s_cells_apart():
    piece, _ = snippet(ANSWER, ["print"])
    # Lines of code are not read as Markdown (runs of spaces are one, as everywhere in a snippet).
    assert piece.endswith("· # a comment, not a heading · print(2*3*4) # **not bold** · key what · a|b both")


def test_words_only_in_a_link_s_address_find_the_message_and_show_its_start():
    piece, highlights = snippet("See [the guide](https://example.edu/zebra) for more.", ["zebra"])
    assert (piece, highlights) == ("See the guide for more.", [])


def test_a_code_fence_s_language_is_not_shown_and_the_match_after_it_is():
    text = "```python\n" + "x = 1\n" * 300 + "```\n\nThat was python."
    piece, highlights = snippet(text, ["python"])
    assert piece.endswith("That was python.") and [piece[start:end] for start, end in highlights] == ["python"]
    assert snippet("~~~zebra\ncode\n~~~", ["zebra"]) == ("code", [])


def test_a_match_deep_in_a_long_line_is_cut_around_and_its_middle_is_not_read_as_a_line_start():
    text = "x " * 1000 + "# not a heading, zebra and more " + "y " * 1000
    piece, highlights = snippet(text, ["zebra"])
    assert piece.startswith("…") and piece.endswith("…") and "x # not a heading, zebra and more y" in piece
    assert [piece[start:end] for start, end in highlights] == ["zebra"]


def test_a_code_block_opened_long_before_the_match_is_still_code():
    text = "```\n" + "code line\n" * 300 + "- not a list item, zebra\n```\n"
    piece, _ = snippet(text, ["zebra"])
    assert "- not a list item, zebra" in piece


def test_plain_text_is_cut_at_spaces_as_before():
    assert snippet("the zebra AND the lion NEAR the river", ["zebra"]) == (
        "the zebra AND the lion NEAR the river",
        [(4, 9)],
    )
    long = " ".join(f"w{n}" for n in range(200))
    piece, highlights = snippet(long, ["w100"])
    assert piece.startswith("…w91 w92") and piece.endswith("…") and len(piece) <= SNIPPET_CHARS + 2
    assert [piece[start:end] for start, end in highlights] == ["w100"]


#: Markdown's syntax characters and a few letters, but no digit, backtick or parenthesis: an ordered
#: list's numbers and a link's address cannot arise, so a fence's info string (``~~~lang``, not shown)
#: holds the only words a snippet drops.
MARKDOWN_ISH = st.text(alphabet="ab #*_->|~\\.[]:=\n\t", max_size=400)
#: A fence line's info string: the words of the text less these are the words it shows.
FENCE_INFO = re.compile(r"^([ \t]{0,3}~{3,}).*$", re.MULTILINE)
#: Syntax between two letters: emphasis there joins words, and the match may be part of a longer one.
INSIDE_A_WORD = re.compile(r"[^\W_][*_~]+[^\W_]")


@given(MARKDOWN_ISH, st.data())
def test_a_snippet_is_one_line_of_the_text_s_words_in_order_with_its_matches_marked(text, data):
    words = search_words(FENCE_INFO.sub(r"\1", text))
    if not words:
        return
    asked = [data.draw(st.sampled_from(words))]
    piece, highlights = snippet(text, asked)
    assert "\n" not in piece and "\t" not in piece
    assert not piece.startswith(BLOCKS_APART.strip()) and not piece.endswith(BLOCKS_APART.strip())
    # The text's letters in order, none added or skipped: emphasis inside a word (``a**b**``) joins
    # its words as the screen does ("ab"), so words are compared run together.
    shown, all_words = "".join(WORD.findall(piece)), "".join(WORD.findall(FENCE_INFO.sub(r"\1", text)))
    assert shown in all_words and asked[0] in shown.lower()
    assert all(piece[start:end].lower().startswith(asked[0]) for start, end in highlights)
    assert highlights or INSIDE_A_WORD.search(text)
