"""Counting what pg8000 connections send to PostgreSQL: statements and network round trips.

`RoundTrips().wrap(connect)` is a connection factory for `shared.adapters.postgres.db.Database` whose connections
count every protocol exchange that waits for the server. The weights follow pg8000 1.31's wire protocol: a simple
query is one round trip, an unnamed extended-protocol statement three (parse, describe and bind, execute), a
prepare one, a prepared statement's execution one.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable

_WEIGHTS = {"execute_simple": (1, 1), "execute_unnamed": (1, 3), "execute_named": (1, 1),
            "prepare_statement": (0, 1), "close_prepared_statement": (0, 1)}


class RoundTrips:
    """Totals over every connection made through `wrap`; `reset()` between the requests you measure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statements = self.round_trips = self.connections = 0
        self.texts: Counter[str] = Counter()

    def reset(self) -> None:
        with self._lock:
            self.statements = self.round_trips = self.connections = 0
            self.texts.clear()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"statements": self.statements, "round_trips": self.round_trips, "connections": self.connections}

    def _count(self, method: str, statement: Any) -> None:
        statements, trips = _WEIGHTS[method]
        with self._lock:
            self.statements += statements
            self.round_trips += trips
            if statements:
                self.texts[" ".join(str(statement).split())[:120]] += 1

    def wrap(self, connect: Callable[[], Any]) -> Callable[[], Any]:
        """A factory like `connect` whose connections are counted (its attributes, e.g. `close`, carried over)."""
        counter = self

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(connect, name)

            def __call__(self) -> Any:
                raw = connect()
                with counter._lock:
                    counter.connections += 1
                for method in _WEIGHTS:
                    original = getattr(raw, method)

                    def counted(*args, __original=original, __method=method, **kwargs):
                        # execute_named(name, params, columns, input_funcs, statement): the text comes last.
                        text = args[4] if __method == "execute_named" and len(args) > 4 else (args[0] if args else "")
                        counter._count(__method, text)
                        return __original(*args, **kwargs)

                    setattr(raw, method, counted)
                return raw

        return Counted()
