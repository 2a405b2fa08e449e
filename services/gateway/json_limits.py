"""What every consumer of an accepted body can carry: JSON nested at most
``MAX_DEPTH`` deep (orjson writes at most 255 levels, and a log record that
no consumer can decode would wedge its dispatch), and integers within
±(2**53 - 1), the range every JSON consumer carries exactly (RFC 7493, I-JSON;
orjson itself silently turns integers beyond 64 bits into floats).

Checked on the parsed value, iteratively (a deep body must not exhaust
Python's recursion limit), before the body is validated or written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1
MAX_REPORTED = 10


def _children(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield child, f"{path}.{key}" if path else str(key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield child, f"{path}[{index}]"


def _walk(value: Any, max_depth: int) -> Iterator[tuple[Any, str, int]]:
    """(value, path, depth) of every value; containers deeper than
    ``max_depth`` are yielded but not entered."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        yield item, path, depth
        if depth < max_depth + 1:
            stack.extend((c, p, depth + 1) for c, p in reversed(list(_children(item, path))))


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _unsafe_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER


_SCALARS = (str, bool, type(None))
_LARGEST_EXACT_FLOAT_INTEGER = 2.0**63


def _plainly_within_limits(value: Any, max_depth: int) -> bool:
    """True when nothing in ``value`` comes near a limit: no container deeper
    than ``max_depth``, no integer beyond the safe range, no float that may
    have been an integer literal. No paths are built, so the common case (a
    body well within limits) costs a few microseconds; anything else, or a
    type other than the parser's own, is left to the full walk."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth > max_depth:
                return False
            for child in item.values() if kind is dict else item:
                if type(child) not in _SCALARS:
                    stack.append((child, depth + 1))
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif kind is float:
            if item.is_integer() and abs(item) >= _LARGEST_EXACT_FLOAT_INTEGER:
                return False
        elif kind not in _SCALARS:
            return False
    return True


def json_limit_problems(
    value: Any, raw: bytes, *, max_depth: int = MAX_DEPTH
) -> list[dict[str, str]]:
    """``{name, reason}`` for each place ``value`` (parsed from ``raw``)
    exceeds what the consumers can carry; empty when it is fine."""
    if _plainly_within_limits(value, max_depth):
        return []
    return _problems_by_walk(value, raw, max_depth)


def _problems_by_walk(value: Any, raw: bytes, max_depth: int) -> list[dict[str, str]]:
    """Every value visited, with its path, to name each problem."""
    problems: list[dict[str, str]] = []
    suspicious_float = False
    for item, path, depth in _walk(value, max_depth):
        if len(problems) >= MAX_REPORTED:
            break
        if _is_container(item) and depth > max_depth:
            problems.append(
                {"name": path or "body", "reason": f"nested deeper than {max_depth} levels"}
            )
        elif _unsafe_integer(item):
            problems.append({"name": path or "body", "reason": _INTEGER_REASON})
        elif isinstance(item, float) and item.is_integer() and abs(item) >= 2**63:
            suspicious_float = True
    if suspicious_float and not problems:
        # orjson gave a float: was it written as an integer literal? Only the
        # text can say; the standard parser keeps integers as integers.
        exact = json.loads(raw)
        for item, path, _ in _walk(exact, max_depth):
            if _unsafe_integer(item):
                problems.append({"name": path or "body", "reason": _INTEGER_REASON})
    return problems[:MAX_REPORTED]


_INTEGER_REASON = (
    f"integer beyond ±{MAX_SAFE_INTEGER} (2^53 - 1) cannot be carried exactly by every "
    "consumer; send it as a string"
)
