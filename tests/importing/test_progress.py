"""The import's progress: a bar redrawn in place on a terminal, one line per tenth elsewhere."""

import io

from mfu_tui.importing.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_elsewhere_one_line_per_tenth_reached():
    out = io.StringIO()
    progress = Progress(25, out)
    for _ in range(25):
        progress.advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "import: 10% (3 of 25 conversations)"
    assert lines[-1] == "import: 100% (25 of 25 conversations)"
    assert [line.split()[1] for line in lines] == [f"{10 * n}%" for n in range(1, 11)]


def test_on_a_terminal_one_bar_redrawn_and_ended_by_a_new_line():
    out = Terminal()
    progress = Progress(4, out)
    for _ in range(2):
        progress.advance()
    progress.interrupt()
    drawn = out.getvalue()
    assert drawn.split("\r")[-1] == f"[{'#' * 15}{'-' * 15}]  50% 2/4 conversations\n"
    assert drawn.count("\n") == 1
