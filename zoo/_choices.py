"""One way to look a name up in a table and fail helpfully, and to list names in a message."""

from __future__ import annotations

import difflib
import re
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


def natural_key(name: str) -> list:
    """Sort key that orders the numbers inside names by value: ``layer2`` before ``layer10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def listing(names: Iterable[str], limit: int = 12) -> str:
    """``names`` joined by commas, the first ``limit`` of them, then "... and N more"."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... and {len(names) - limit} more" if len(names) > limit else "")
