"""The webhook adapters on real parts: the sender against loopback servers, the secret box, the outbox's commit."""
from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.postgres import notes
from shared.adapters.postgres import repository as repo
from shared.adapters.secret_box import SecretBox, SecretBoxError, new_key
from shared.adapters.webhook_sender import WebhookSender
from shared.domain.meeting import Meeting, Participant, Status
from shared.domain.webhooks import UnsafeTarget
from shared.services.transitions import change
from tests.receiver import Receiver


# --- the sender --------------------------------------------------------------------------------------------------

def test_a_public_name_resolving_to_a_private_address_is_refused_at_registration_and_at_delivery():
    rebinding = WebhookSender(allow_loopback=True, resolver=lambda host, port: ["10.0.0.5"])
    with pytest.raises(UnsafeTarget, match="private"):
        rebinding.check("https://hooks.xoma.example/meet")
    result = rebinding.send("https://hooks.xoma.example/meet", {}, b"{}")
    assert result.status_code is None and "private" in result.error
    unresolvable = WebhookSender(allow_loopback=False, resolver=lambda host, port: (_ for _ in ()).throw(OSError()))
    with pytest.raises(UnsafeTarget, match="resolve"):
        unresolvable.check("https://hooks.xoma.example/meet")


def test_the_sender_posts_the_body_and_headers_and_follows_no_redirect():
    target = Receiver()
    redirecting = Receiver(script=[(302, {"Location": target.url})])
    try:
        sender = WebhookSender(allow_loopback=True)
        result = sender.send(redirecting.url + "/hook?x=1", {"webhook-id": "m1", "Content-Type": "application/json"},
                             b'{"a": 1}')
        assert result.status_code == 302
        path, headers, body = redirecting.next()
        assert (path, body, headers["webhook-id"]) == ("/hook?x=1", b'{"a": 1}', "m1")
        assert headers["Host"] == redirecting.url.removeprefix("http://")
        target.assert_quiet(0.3)
    finally:
        target.close()
        redirecting.close()


def test_a_receiver_that_does_not_answer_in_time_is_cut_off():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    try:
        started = time.monotonic()
        result = WebhookSender(allow_loopback=True, timeout=0.5).send(
            f"http://127.0.0.1:{server.getsockname()[1]}/", {}, b"{}")
        assert result.status_code is None and "no answer within" in result.error
        assert time.monotonic() - started < 2
    finally:
        server.close()


def test_a_closed_port_is_a_failed_attempt_not_an_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = WebhookSender(allow_loopback=True).send(f"http://127.0.0.1:{port}/", {}, b"{}")
    assert result.status_code is None and "connection failed" in result.error


# --- the secret box ------------------------------------------------------------------------------------------------

def test_secrets_are_encrypted_per_endpoint_and_the_key_can_rotate():
    old_key, new_key_ = new_key(), new_key()
    box = SecretBox(old_key)
    sealed = box.encrypt("whsec_abc", context="endpoint-1")
    assert b"whsec_abc" not in sealed and box.decrypt(sealed, context="endpoint-1") == "whsec_abc"
    with pytest.raises(SecretBoxError):
        box.decrypt(sealed, context="endpoint-2")  # copied onto another endpoint, it does not open
    rotated = SecretBox(f"{new_key_},{old_key}")
    assert rotated.decrypt(sealed, context="endpoint-1") == "whsec_abc"
    with pytest.raises(SecretBoxError):
        box.decrypt(rotated.encrypt("x", context="e"), context="e")  # the first key of the ring encrypts
    with pytest.raises(SecretBoxError):
        SecretBox(new_key_).decrypt(sealed, context="endpoint-1")
    for bad in ("", "not base64!", "c2hvcnQ="):
        with pytest.raises(SecretBoxError):
            SecretBox(bad)


# --- the outbox commits with the change, or not at all ----------------------------------------------------------------

T0 = datetime(2026, 5, 4, 14, 0, tzinfo=timezone.utc)


@pytest.fixture
def pending(db, principal) -> Meeting:
    meeting = Meeting(id=str(uuid.uuid4()), client_id=principal.client_id, status=Status.PENDING,
                      organizer_email="doctor@clinica.com", title="Consulta", description=None, time_zone="UTC",
                      scheduled_start=T0, scheduled_end=T0 + timedelta(minutes=30), request_fingerprint="f",
                      participants=(Participant("doctor@clinica.com", "organizer"),
                                    Participant("paciente@correo.com", "guest")))
    with db.transaction() as cur:
        assert repo.insert_meeting(cur, meeting)
        cur.execute("INSERT INTO webhook_endpoints (id, client_id, url, event_types) VALUES"
                    " (:id, :c, 'https://hooks.xoma.example/', ARRAY['meeting.created'])",
                    {"id": str(uuid.uuid4()), "c": principal.client_id})
    return meeting


def _events(db, meeting_id: str) -> list[tuple]:
    with db.transaction() as cur:
        cur.execute("SELECT e.type, e.sequence, count(d.id) FROM webhook_events e"
                    " LEFT JOIN webhook_deliveries d ON d.event_id = e.id WHERE e.meeting_id = :m"
                    " GROUP BY e.type, e.sequence ORDER BY e.sequence", {"m": meeting_id})
        return [tuple(row) for row in cur.fetchall()]


def test_a_rolled_back_change_leaves_no_event_and_nothing_to_enqueue(db, pending):
    seen = []
    db.on_commit = seen.append
    try:
        with pytest.raises(RuntimeError):
            with db.transaction() as cur:
                change(cur, repo.get_meeting(cur, pending.id, lock=True), to=Status.CREATED, google_event_id="ev")
                raise RuntimeError("the instance dies before the commit")
        assert _events(db, pending.id) == [] and seen == []
        with db.transaction() as cur:
            change(cur, repo.get_meeting(cur, pending.id, lock=True), to=Status.CREATED, google_event_id="ev")
        assert _events(db, pending.id) == [("meeting.created", 1, 1)]
        [noted] = seen
        assert [meeting for _, meeting in noted["webhook_deliveries"]] == [pending.id]
        with db.transaction() as cur:  # the same decision again: nothing new
            change(cur, repo.get_meeting(cur, pending.id, lock=True), to=Status.CREATED, google_event_id="ev")
        assert _events(db, pending.id) == [("meeting.created", 1, 1)] and len(seen) == 1
    finally:
        db.on_commit = None


def test_a_failing_after_commit_hook_does_not_undo_the_commit(db, pending):
    def explode(_noted):
        raise RuntimeError("Cloud Tasks is down")

    db.on_commit = explode
    try:
        with db.transaction() as cur:
            change(cur, repo.get_meeting(cur, pending.id, lock=True), to=Status.CREATED, google_event_id="ev")
    finally:
        db.on_commit = None
    assert _events(db, pending.id) == [("meeting.created", 1, 1)]


def test_notes_are_per_transaction():
    class Cursor:
        pass

    cur = Cursor()
    notes.note(cur, "k", 1, 2)
    notes.note(cur, "k", 3)
    assert notes.take(cur) == {"k": [1, 2, 3]} and notes.take(cur) == {}
