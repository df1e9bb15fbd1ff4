"""The fake's world on disk, so a restarted server still has the events (spaces, conferences, files...) that the
product's database refers to, as Google would.

Written after every request that may have changed the world (atomically: a temporary file renamed over the old one)
and read at start. Test controls (faults, latency, the request log) are not kept. A file that cannot be read is set
aside with a warning and the world starts empty.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import sys
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

VERSION = 1


def dump(value: Any) -> Any:
    """A JSON-ready copy of the world's values: dataclasses, datetimes, containers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return value


def load(kind: Any, data: Any) -> Any:
    """The value of type `kind` (a dataclass, datetime, list[...], X | None, plain JSON) that `dump` wrote."""
    if data is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return load(options[0], data) if len(options) == 1 else data
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        return [load(item, v) for v in data]
    if origin is dict:
        _, item = typing.get_args(kind) or (str, Any)
        return {k: load(item, v) for k, v in data.items()}
    if kind is datetime:
        return datetime.fromisoformat(data)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind, vars(sys.modules[kind.__module__]))
        known = {f.name for f in dataclasses.fields(kind)}
        return kind(**{name: load(hints[name], value) for name, value in data.items() if name in known})
    return data


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class StateFile:
    """Where a world is kept between runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._last: str | None = None

    def read(self) -> dict | None:
        """The saved world, or None (no file, or one that cannot be read: set aside, never overwritten blindly)."""
        if not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError(f"not a version {VERSION} world")
            return data
        except (OSError, ValueError) as exc:
            aside = self.path.with_suffix(self.path.suffix + ".unreadable")
            logger.warning("fake Google state %s unreadable (%s); moved to %s, starting empty", self.path, exc, aside)
            self.path.replace(aside)
            return None

    def write(self, data: dict) -> None:
        """Save `data` unless it is what was saved last; atomic, owner-only."""
        text = json.dumps({"version": VERSION, **data}, separators=(",", ":"), sort_keys=True)
        if text == self._last:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self._last = text
