"""Checked JSON: one reader for every results file, against the shape its readers index.

Whatever is wrong with a file (unreadable, not UTF-8, not JSON, or of another shape) is one
``MnistLiteError`` that names it, so that code reading it needs no checks of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnist_lite.errors import MnistLiteError


@dataclass(frozen=True)
class Value:
    """A leaf of a shape: a JSON value that passes ``test``, described as ``what``."""

    what: str
    test: Callable[[object], bool]


@dataclass(frozen=True)
class ListOf:
    """A JSON array of at least ``at_least`` items of shape ``item``."""

    item: object
    at_least: int = 0


@dataclass(frozen=True)
class Schema:
    """What a file must hold for its readers: ``shape`` is a ``Value``, a ``ListOf``, or a dict
    of key -> shape, where a key ending in "?" may be absent and the single key ``str`` stands
    for any key (a mapping of names). ``fix`` says what to do about a file that fails it."""

    name: str
    shape: object
    fix: str = ""


def _is_number(value) -> bool:
    # a JSON number that formats as one: no bool, NaN or infinity, nothing too large to turn into a float
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= 1e300


NUMBER = Value("a finite number", _is_number)
POSITIVE = Value("a positive number", lambda v: _is_number(v) and v > 0)
COUNT = Value("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**63)
MAYBE_COUNT = Value("a whole number or null", lambda v: v is None or COUNT.test(v))
TEXT = Value("a string", lambda v: isinstance(v, str))
MAYBE_TEXT = Value("a string or null", lambda v: v is None or isinstance(v, str))
FLAG = Value("true or false", lambda v: isinstance(v, bool))


def _mismatch(value, shape, where: str) -> str | None:
    """Where and how ``value`` departs from ``shape``, or None when it fits."""
    here = where or "the top level"
    if isinstance(shape, Value):
        return None if shape.test(value) else f"{here}: not {shape.what}"
    if isinstance(shape, ListOf):
        if not isinstance(value, list) or len(value) < shape.at_least:
            return f"{here}: not a list" + (f" of at least {shape.at_least}" if shape.at_least else "")
        found = (_mismatch(item, shape.item, f"{where}[{i}]") for i, item in enumerate(value))
        return next(filter(None, found), None)
    if not isinstance(value, dict):
        return f"{here}: not an object"
    if str in shape:
        fields = [(key, shape[str]) for key in value]
    else:
        absent = [key for key in shape if not key.endswith("?") and key not in value]
        if absent:
            return f"{here}: no {absent[0]!r}"
        fields = [(key.rstrip("?"), item) for key, item in shape.items() if key.rstrip("?") in value]
    found = (_mismatch(value[key], item, f"{where}.{key}" if where else key) for key, item in fields)
    return next(filter(None, found), None)


def read_json(path: Path, schema: Schema, missing_ok: bool = False):
    """The JSON in ``path`` once it fits ``schema``; None for a missing file if ``missing_ok``.

    Whatever is wrong with the file, unreadable, not UTF-8, not JSON, or of another shape than
    ``schema``, is one ``MnistLiteError`` naming it: callers index what this returns without
    any further checks.
    """
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return None
        problem = "no such file"
    except OSError as error:
        problem = f"cannot read it: {error.strerror or type(error).__name__}"
    except UnicodeDecodeError:
        problem = "not UTF-8"
    except json.JSONDecodeError as error:
        problem = f"not JSON: {error.msg} at line {error.lineno}"
    except (ValueError, RecursionError) as error:  # a number with too many digits, nesting too deep
        problem = f"not JSON that Python reads: {type(error).__name__}"
    else:
        problem = _mismatch(value, schema.shape, "")
        if problem is None:
            return value
    fix = f"; {schema.fix}" if schema.fix else ""
    raise MnistLiteError(" ".join(f"{path}: not a valid {schema.name} ({problem}){fix}".split()))
