"""Idempotency-Key on POST, PATCH and DELETE: the first final answer is kept 24 h and replayed."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

import flask

from shared.domain import errors

METHODS = frozenset({"POST", "PATCH", "DELETE"})
_REPLAYED_HEADERS = ("Location", "Content-Type")
_WAIT_S = 15.0
_POLL_S = 0.2


def check_key(key: str) -> None:
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise errors.InvalidInput.field("Idempotency-Key", "must be 1 to 255 printable ASCII characters")


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and body (on DELETE the key and the path identify it)."""
    return hashlib.sha256(f"{method} {path}\n".encode() + (b"" if method == "DELETE" else body)).hexdigest()


def replay_or_run(store, *, scope: str, key: str, fingerprint: str, run: Callable[[], flask.Response],
                  secret_fields: tuple[str, ...] = ()) -> flask.Response:
    """Replay the stored answer for (scope, key), wait for an in-flight twin, or run and store the answer.

    The same key with another request is a 422; 5xx and 429 answers are not final, so they are not kept.
    `secret_fields` of the answer are stored (and so replayed) as null: a secret shown once is kept nowhere else.
    """
    check_key(key)
    scoped = f"{scope}:{key}"
    claim = store.begin(scoped, fingerprint=fingerprint)
    deadline = time.monotonic() + _WAIT_S
    while claim.state == "running" and claim.fingerprint == fingerprint and time.monotonic() < deadline:
        time.sleep(_POLL_S)  # the same request is in flight: wait for its answer rather than refuse
        claim = store.begin(scoped, fingerprint=fingerprint)
    if claim.fingerprint is not None and claim.fingerprint != fingerprint:
        raise errors.InvalidInput.field("Idempotency-Key", "was already used with a different request")
    if claim.state == "done" and claim.response:
        stored = claim.response
        response = flask.Response(stored["body"], status=stored["status"])
        for name, value in stored.get("headers", {}).items():
            response.headers[name] = value
        response.headers["Idempotent-Replayed"] = "true"
        return response
    if claim.state == "running":
        raise errors.Conflict("A request with this Idempotency-Key is still in progress; retry shortly.")
    try:
        response = run()
    except BaseException:
        store.abort(scoped)
        raise
    if response.status_code >= 500 or response.status_code == 429:
        store.abort(scoped)  # not a final answer: the retry must really run
    else:
        store.finish(scoped, fingerprint=fingerprint, response={
            "status": response.status_code, "body": _without(response.get_data(as_text=True), secret_fields),
            "headers": {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}})
    return response


def _without(body: str, fields: tuple[str, ...]) -> str:
    """The JSON body with `fields` set to null (a problem answer carries none of them and stays as it is)."""
    if not fields:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and any(name in data for name in fields):
        data.update({name: None for name in fields if name in data})
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return body
