"""Helpers shared by the command-line entry points (train.py, python -m zoo.bench)."""

from __future__ import annotations

import ast


def parse_assignments(pairs: list[str], flag: str) -> dict:
    """["k=v", ...] -> {k: literal(v)}; a value that is not a Python literal stays a string
    (a bare word such as relu), and a list becomes a tuple (module configs are hashable).

    Raises ValueError naming ``flag`` for an item without "=".
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} expects key=value, got {pair!r}")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        out[key.strip()] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out
