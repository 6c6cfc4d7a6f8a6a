"""Sizes in words, as error messages of both sides say them."""

from __future__ import annotations


def describe_size(size: int) -> str:
    """``size`` bytes in words: ``200.0 MiB``, ``1.5 KiB``, ``12 bytes``."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"
