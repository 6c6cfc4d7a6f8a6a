"""What the terminal can show: colour and the symbols the app draws.

The status dot is a coloured ``●``. Where colour or that symbol cannot be
shown (``NO_COLOR`` set, ``TERM=dumb``, a locale that is not UTF-8) the app
writes plain words instead, so the state still reads clearly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def plain_text_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """True when the app should use words instead of colour and symbols.

    Args:
        environ: The environment to look at (default: ``os.environ``).

    Returns:
        True if ``NO_COLOR`` is set to anything, ``TERM`` is ``dumb``, or the
        locale (``LC_ALL``, then ``LC_CTYPE``, then ``LANG``) is not UTF-8.
        An unset locale is the C locale, which is ASCII.
    """
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return True
    if env.get("TERM", "") == "dumb":
        return True
    return not locale_is_utf8(env)


def locale_is_utf8(environ: Mapping[str, str]) -> bool:
    """True if the first set of ``LC_ALL``, ``LC_CTYPE``, ``LANG`` names UTF-8."""
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(name)
        if value:
            normalized = value.lower().replace("-", "")
            return "utf8" in normalized
    return False
