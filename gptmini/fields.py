"""Reading JSON files that a user, a download or a crash may have broken, with one kind of error.

Every loader (model configs, tokenizer files) reads its fields through :class:`Fields`, so a file that is
not an object, misses a field, or holds ``null``, a string or ``true`` where a number belongs fails with one
``ValueError`` that names the file and the field, instead of an ``AttributeError`` three calls later.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

_MISSING: Any = object()


def is_int(value: Any) -> bool:
    """An int that is not a bool (``True`` would otherwise pass as a vocabulary of one token)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """An int or a float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_json_object(path: Path, error: type[ValueError] = ValueError, hint: str = "") -> dict[str, Any]:
    """The JSON object in ``path``; anything else (no file, a folder, bad UTF-8 or JSON, a list) is ``error``."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise error(f"{path} {what}{hint}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise error(f"{path} is not valid JSON ({err}){hint}") from err
    except OSError as err:
        raise error(f"{path} could not be read ({err.strerror or err}){hint}") from err
    if not isinstance(data, dict):
        raise error(f"{path} must hold a JSON object ({{...}}), not {type(data).__name__}{hint}")
    return data


class Fields:
    """Typed access to the fields of one JSON object; ``source`` (a path) goes into every message."""

    def __init__(self, data: dict[str, Any], source: str | Path, error: type[ValueError] = ValueError) -> None:
        self.data, self.source, self.error = data, str(source), error

    def fail(self, name: str, expected: str, value: Any = _MISSING) -> ValueError:
        got = "it is missing" if value is _MISSING else f"got {value!r}"
        return self.error(f"{self.source}: field {name!r} must be {expected}; {got}")

    def get(self, name: str, default: Any = _MISSING, expected: str = "present") -> Any:
        """The raw value; a missing field without a default is an error that says what was expected."""
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.fail(name, expected)
        return default

    def int(self, name: str, default: Any = _MISSING, minimum: int = 1, allow_none: bool = False) -> Any:
        """An integer >= ``minimum`` (a bool is not an integer; ``2.0`` is not either)."""
        kind = ("a positive integer" if minimum == 1 else f"an integer >= {minimum}") + (
            " or null" if allow_none else ""
        )
        value = self.get(name, default, kind)
        if value is None and allow_none:
            return None
        if not is_int(value) or value < minimum:
            raise self.fail(name, kind, value)
        return value

    def float(self, name: str, default: Any = _MISSING, low: float = 0.0, high: float = math.inf) -> float:
        """A finite number in [low, high), or > 0 when ``low`` is 0 and ``high`` infinite (ints are fine:
        JSON writes ``1e-05`` and ``0`` alike)."""
        positive = low == 0.0 and high == math.inf
        kind = "a positive number" if positive else f"a number in [{low}, {high})"
        value = self.get(name, default, kind)
        ok = is_real(value) and low <= value < high
        if not ok or (positive and value == 0):
            raise self.fail(name, kind, value)
        return float(value)

    def bool(self, name: str, default: Any = _MISSING) -> bool:
        value = self.get(name, default, "true or false")
        if not isinstance(value, bool):
            raise self.fail(name, "true or false", value)
        return value

    def str(self, name: str, default: Any = _MISSING, allow_none: bool = False) -> Any:
        kind = "a string" + (" or null" if allow_none else "")
        value = self.get(name, default, kind)
        if value is None and allow_none:
            return None
        if not isinstance(value, str):
            raise self.fail(name, kind, value)
        return value

    def list(self, name: str, default: Any = _MISSING) -> list:
        value = self.get(name, default, "a list")
        if not isinstance(value, list):
            raise self.fail(name, "a list", value)
        return value

    def object(self, name: str, default: Any = _MISSING) -> dict:
        value = self.get(name, default, "an object ({...})")
        if not isinstance(value, dict):
            raise self.fail(name, "an object ({...})", value)
        return value
