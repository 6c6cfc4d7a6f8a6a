"""What the terminal can show: colour, and characters beyond ASCII.

The status dot is a coloured ``●``. Where colour or that symbol cannot be
shown (``NO_COLOR`` set, ``TERM=dumb``, ``TERM=linux``, a locale that is not
UTF-8) the app writes plain words instead, so the state still reads clearly.

Where only ASCII can be shown (a locale that is not UTF-8, ``TERM=dumb``, or
the Linux console, ``TERM=linux``, whose font lacks rounded corners, eighth
blocks, ``⏎`` and ``…``) everything the app draws is ASCII (see
``ascii_only.py``); ``TERM=dumb`` also gets no colour.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: Terminals that show ASCII only, whatever the locale: no Unicode at all, or a console
#: font of a few hundred glyphs.
ASCII_TERMINALS = frozenset({"dumb", "linux"})


def plain_text_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """True when the app should use words instead of colour and symbols.

    Args:
        environ: The environment to look at (default: ``os.environ``).

    Returns:
        True if ``NO_COLOR`` is set to anything, or only ASCII can be shown
        (``ascii_only_wanted``).
    """
    env = os.environ if environ is None else environ
    return bool(env.get("NO_COLOR")) or ascii_only_wanted(env)


def ascii_only_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """True when the terminal can show nothing but ASCII.

    Args:
        environ: The environment to look at (default: ``os.environ``).

    Returns:
        True if ``TERM`` is ``dumb`` or ``linux``, or the locale (``LC_ALL``,
        then ``LC_CTYPE``, then ``LANG``) is not UTF-8. An unset locale is
        the C locale, which is ASCII.
    """
    if environ is None and started_in_c_locale():
        return True
    env = os.environ if environ is None else environ
    return env.get("TERM", "") in ASCII_TERMINALS or not locale_is_utf8(env)


def started_in_c_locale() -> bool:
    """True if Python started in the C (or POSIX) locale, which is ASCII.

    Python hides it (PEP 538, PEP 540): it sets ``LC_CTYPE=C.UTF-8`` in
    ``os.environ`` and turns its UTF-8 mode on, so the environment reads as
    UTF-8 when the terminal was never told to be. UTF-8 mode that the user
    did not ask for (``PYTHONUTF8``, ``-X utf8``) is the trace left.
    """
    asked = os.environ.get("PYTHONUTF8") or "utf8" in sys._xoptions
    return bool(sys.flags.utf8_mode) and not asked


def colour_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """False for ``TERM=dumb``, which takes no escape for colour (``NO_COLOR`` is Textual's own)."""
    env = os.environ if environ is None else environ
    return env.get("TERM", "") != "dumb"


def locale_is_utf8(environ: Mapping[str, str]) -> bool:
    """True if the first set of ``LC_ALL``, ``LC_CTYPE``, ``LANG`` names UTF-8."""
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(name)
        if value:
            normalized = value.lower().replace("-", "")
            return "utf8" in normalized
    return False
