"""One way to look a name up in a table and fail helpfully."""

from __future__ import annotations

import difflib
from typing import Iterable, Mapping, TypeVar

T = TypeVar("T")


def unknown_name_error(kind: str, name: str, choices: Iterable[str], context: str = "") -> ValueError:
    """A ValueError naming the valid choices and the closest matches to ``name``.

    ``context`` follows the name, e.g. ``" for model 'mlp'"``.
    """
    choices = sorted(choices)
    near = difflib.get_close_matches(str(name), choices, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    return ValueError(f"unknown {kind} {name!r}{context}.{hint} Valid {kind}s: {', '.join(choices)}.")


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """``table[name]``, or a ValueError listing valid names and near matches."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise unknown_name_error(kind, name, table) from None
