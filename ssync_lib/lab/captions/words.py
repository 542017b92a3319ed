"""Small word helpers the captions share: plurals and lists in prose."""
from __future__ import annotations


def _plural(n: int, word: str, many: str | None = None) -> str:
    return word if n == 1 else (many or word + "s")


def _join(items) -> str:
    return ", ".join(str(x) for x in items)


def _and(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(x) for x in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
