"""Rich's Markdown for the parts of an assistant message (``AnswerBody``), and the height it draws.

Imported by ``MessageView`` when it first shows an assistant message, not
with the app: markdown-it, Rich's Markdown and Pygments are not needed for
the first screen, and importing them took about a sixth of the time to the
first frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.control import strip_control_codes
from rich.markdown import CodeBlock, MarkdownElement
from rich.markdown import Markdown as RichMarkdown
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax, TokenType
from rich.text import Text

from mfu_tui.tui.stream_split import Part, without_empty_open_fence

#: The parser of Rich's Markdown (CommonMark with strikethrough and tables), built once: Rich builds one for
#: each document, which cost as much as parsing a frozen part.
_RICH_PARSER = MarkdownIt().enable("strikethrough").enable("table")

#: The tab size of Rich's ``Syntax``, which draws the code blocks.
_TAB_SIZE = Syntax("", "text").tab_size


class PartCodeBlock(CodeBlock):
    """Rich's code block, without its blank line where a long code block was cut between two parts.

    So the parts of a long code block join up as one block: the padding
    above is left out where the block goes on from the part before, the
    padding below where it goes on into the next (``FrozenRichMarkdown``).
    """

    @classmethod
    def create(cls, markdown: RichMarkdown, token: Token) -> CodeBlock:
        block = super().create(markdown, token)
        if isinstance(block, PartCodeBlock) and isinstance(markdown, FrozenRichMarkdown):
            top = 0 if token is markdown.cut_above else 1
            bottom = 0 if token is markdown.cut_below else 1
            block.padding = (top, 1, bottom, 1)
        return block

    def __init__(self, lexer_name: str, theme: str) -> None:
        super().__init__(lexer_name, theme)
        #: Rich's padding of one cell all round, but at a cut.
        self.padding = (1, 1, 1, 1)

    @property
    def ends_a_cut_block(self) -> bool:
        """True for the end of a block cut just before its closing fence: its code is all in the parts before."""
        return self.padding[0] == 0 and not str(self.text).strip()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        syntax = WrappingSyntax(code, self.lexer_name, theme=self.theme, word_wrap=True, padding=self.padding)
        if not self.ends_a_cut_block:
            yield syntax
            return
        # Rich draws an empty line for no code: only the padding below is drawn.
        for line in console.render_lines(syntax, options, pad=True)[1:]:
            yield from line
            yield Segment.line()


class WrappingSyntax(Syntax):
    """Rich's ``Syntax`` as a Markdown code block has it (word wrap, padding), drawn from Pygments' tokens.

    Rich highlights the code into one ``Text`` (a span a token), divides it
    into a ``Text`` a line and wraps each one, then its ``Padding`` splits
    the lines drawn again and styles each segment again: together more than
    Pygments' reading of the code. Here a line no wider than the code is
    drawn from its tokens, each in the style Rich gives it, and padded in
    the same pass; only a line wider than that is a ``Text``, wrapped as
    Rich wraps it. The cells are those Rich draws (checked against it in the
    tests); a ``Syntax`` with more options, or drawn to a height, is Rich's.
    """

    @property
    def _as_code_blocks_are(self) -> bool:
        """True for a ``Syntax`` with word wrap and padding, as Rich's Markdown makes it for a code block."""
        options = self.line_numbers or self.line_range or self.indent_guides or self._stylized_ranges
        as_wrapped = self.word_wrap and self.code_width is None and self.background_color is None
        return as_wrapped and any(self.padding) and not options

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        top, right, bottom, left = self.padding
        code_width = options.max_width - left - right
        if not self._as_code_blocks_are or options.height is not None or code_width < 1:
            yield from super().__rich_console__(console, options)
            return
        base_style = self._get_base_style()
        blank = Segment(f"{' ' * options.max_width}\n", base_style)
        before = [Segment(" " * left, base_style)] if left else []
        after = [Segment(" " * right, base_style), Segment.line()] if right else [Segment.line()]
        yield from [blank] * top
        for line in self._code_lines(console, options.update_width(code_width), base_style):
            yield from before
            yield from line
            yield from after
        yield from [blank] * bottom

    def _code_lines(self, console: Console, options: ConsoleOptions, base_style: Style) -> Iterable[list[Segment]]:
        """The code's lines at the width of ``options``, each padded to it, as Rich's ``Padding`` has them."""
        code_width = options.max_width
        # Rich's Text pads a line it wraps on the code's background, not on a transparent one.
        justify: JustifyMethod = "default" if base_style.transparent_background else "left"
        wrap_options = options.update(justify="left")
        for line in self._token_lines(base_style):
            plain = "".join(text for text, _ in line)
            # Rich trims the spaces at the end of a line longer than the width in characters, not cells.
            if cell_len(plain) <= code_width and len(plain) <= code_width:
                if any(style for _, style in line):
                    segments = [Segment(text, style or base_style) for text, style in line]
                else:  # as Rich draws a text without spans: unstyled, but for Padding's style (none if transparent)
                    segments = [Segment(plain, base_style or None)]
                yield Segment.adjust_line_length(segments, code_width, style=base_style)
            else:
                text = Text(style=base_style, justify=justify).append_tokens(line)
                yield from console.render_lines(text, wrap_options, style=base_style)

    def _token_lines(self, base_style: Style) -> list[list[tuple[str, Style | None]]]:
        """The code's lines as Rich's highlighted text is divided, each a list of its tokens.

        A token's text is stripped of control characters (as Rich's Text
        strips it) and cut at each line ending, empty pieces left out. Its
        style is the one Rich's Text draws it in: the theme's for its type
        over ``base_style``, or None if the theme has none.
        """
        ends_on_newline, code = self._process_code(self.code)
        lexer = self.lexer or self.default_lexer
        styles: dict[TokenType, Style | None] = {}
        lines: list[list[tuple[str, Style | None]]] = [[]]
        for token_type, token in lexer.get_tokens(code):
            try:
                style = styles[token_type]
            except KeyError:
                theme_style = self._theme.get_style_for_token(token_type)
                style = styles[token_type] = base_style + theme_style if theme_style else None
            first, *others = strip_control_codes(token).split("\n")
            if first:
                lines[-1].append((first, style))
            lines.extend([(piece, style)] if piece else [] for piece in others)
        if not ends_on_newline and not lines[-1]:
            lines.pop()  # the empty line after the line ending Rich added
        return lines


#: First blocks that Rich draws with a blank line above them of their own (a list, a quote, a table):
#: one whose content Rich has closed before the block itself asks for the line, even first in a document.
_OWN_BLANK_ABOVE = frozenset({"bullet_list_open", "ordered_list_open", "blockquote_open", "table_open"})


class FrozenRichMarkdown(RichMarkdown):
    """Rich's Markdown for one part of an answer, so that the parts one under another draw the answer whole.

    Parsed by the one parser above rather than a new one each time; the
    parts of a code block cut join up (``PartCodeBlock``); and a part that
    begins a block after a blank line has the blank line above it that Rich
    draws between two blocks of one document (``Part.gap_above``).
    """

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **RichMarkdown.elements,
        "fence": PartCodeBlock,
        "code_block": PartCodeBlock,
    }

    def __init__(self, part: Part) -> None:
        """
        Args:
            part: The part of an answer to draw (``Part.markdown``).
        """
        # What RichMarkdown.__init__ does with the arguments AnswerBody gives, but for the parser.
        self.markup = without_empty_open_fence(part.markdown)
        self.parsed = _RICH_PARSER.parse(self.markup)
        fences = [token for token in self.parsed if token.type == "fence"]
        #: The code block opened again at the top, where the part before cut it (``PartCodeBlock``).
        self.cut_above = fences[0] if part.opens and fences else None
        #: The code block closed at the end, which goes on in the next part.
        self.cut_below = fences[-1] if part.closes and fences else None
        self.code_theme = "monokai"
        self.justify = None
        self.style = "none"
        self.hyperlinks = True
        self.inline_code_lexer = None
        self.inline_code_theme = self.code_theme
        #: The blank line between this part and the one before, unless the first block draws its own
        #: (or there is none yet: the part just begun as an answer streams).
        self.blank_above = part.gap_above and bool(self.parsed) and self.parsed[0].type not in _OWN_BLANK_ABOVE

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.blank_above:
            yield Segment.line()
        yield from super().__rich_console__(console, options)


class CodeBlockHeight(PartCodeBlock):
    """A code block drawn as the blank lines Rich's highlighted code block takes, without highlighting it.

    Rich draws a code block as ``Syntax`` with word wrap and a padding of
    one cell: the code's lines, each wrapped at the width less two, between
    two blank lines (none at a cut: ``PartCodeBlock``). Only a line wider
    than that is wrapped here (as ``Syntax`` wraps it). No Pygments lexer
    runs: finding one by its name alone scans Pygments' whole list of lexers.
    """

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # The code as Syntax reads it: CodeBlock strips its end, Syntax adds a line ending and expands the
        # tabs, and Pygments, for any lexer, drops a byte order mark and reads \r\n and \r as line endings.
        code = f"{str(self.text).rstrip()}\n".expandtabs(_TAB_SIZE).removeprefix("\ufeff")
        code = strip_control_codes(code.replace("\r\n", "\n").replace("\r", "\n"))  # as Syntax's Text does
        if self.ends_a_cut_block:
            yield from [Segment.line()] * self.padding[2]
            return
        code_width = max(0, options.max_width - 2)
        wrap_options = options.update(width=code_width, height=None, justify="left")
        height = self.padding[0] + self.padding[2]  # above and below
        for line in code.split("\n")[:-1]:  # not the empty string after the last line ending
            fits = code_width and cell_len(line) <= code_width
            height += 1 if fits else len(console.render_lines(Text(line), wrap_options, pad=False))
        yield from [Segment.line()] * height


class HeightMarkdown(FrozenRichMarkdown):
    """The height of a frozen part, found without highlighting its code: Pygments was most of it."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **RichMarkdown.elements,
        "fence": CodeBlockHeight,
        "code_block": CodeBlockHeight,
    }
