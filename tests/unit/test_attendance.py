"""Attendance matching, pure: joiners to the organizer and invitees by email, display name, elimination.

Google reveals a signed-in joiner's email only for accounts of the clinic's Workspace: People `people.get`
returns only public profile data for other accounts ("Get a single person" reference,
developers.google.com/people/api/rest/v1/people/get; the Meet `SignedinUser` resource carries only `user`
and `displayName`, developers.google.com/meet/api/reference/rest/v2/conferenceRecords.participants). So a
patient with a personal Google account, an anonymous or a phone joiner is known by a display name alone.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.domain.attendance import match, same_name
from shared.domain.meeting import Joiner, Participant

T0 = datetime(2026, 4, 2, 15, 0, tzinfo=timezone.utc)
DOCTOR = Participant("doctor@clinica.com", "organizer")


def joiner(key: str, name: str | None, email: str | None = None, minutes: int = 20) -> Joiner:
    return Joiner(display_name=name, email=email, key=key, intervals=[(T0, T0 + timedelta(minutes=minutes))])


def by_email(result):
    return {a.email: a for a in result.invitees}


def test_the_external_patient_is_matched_by_elimination():
    people = [DOCTOR, Participant("paciente@gmail.com", "guest")]
    result = match(people, [joiner("email:doctor@clinica.com", "Dra. Ruiz", "doctor@clinica.com"),
                            joiner("meet:users/123", "Carlos", minutes=25)], decided=True)
    got = by_email(result)
    assert (got["doctor@clinica.com"].attended, got["doctor@clinica.com"].matched_by) == (True, "email")
    patient = got["paciente@gmail.com"]
    assert (patient.attended, patient.matched_by, patient.seconds, patient.display_name) == (
        True, "elimination", 25 * 60, "Carlos")
    assert result.others == ()


def test_two_invitees_and_one_unmatched_joiner_are_both_undetermined():
    people = [DOCTOR, Participant("ana@gmail.com", "guest"), Participant("bo@gmail.com", "guest")]
    result = match(people, [joiner("meet:users/9", "Someone")], decided=True)
    got = by_email(result)
    assert got["ana@gmail.com"].attended is None and got["bo@gmail.com"].attended is None
    assert [j.key for j in result.others] == ["meet:users/9"]
    # The organizer matched no one either, and a joiner is left: undetermined too.
    assert got["doctor@clinica.com"].attended is None


def test_display_names_match_across_case_accents_and_spaces():
    people = [DOCTOR, Participant("carlos@gmail.com", "guest", invited_name="Carlos Pérez"),
              Participant("ana@gmail.com", "guest", invited_name="Ana Gómez")]
    result = match(people, [joiner("meet:users/1", "  carlos perez "), joiner("meet:users/2", "ANA GOMEZ")],
                   decided=True)
    got = by_email(result)
    assert (got["carlos@gmail.com"].matched_by, got["carlos@gmail.com"].meet_key) == ("display_name", "meet:users/1")
    assert (got["ana@gmail.com"].matched_by, got["ana@gmail.com"].meet_key) == ("display_name", "meet:users/2")
    assert got["doctor@clinica.com"].attended is False  # nobody is left who could be the organizer
    assert same_name("José", "jose") and not same_name("José", "Josefa") and not same_name("", "")


def test_a_no_show_is_certain_only_when_no_joiner_is_left():
    people = [DOCTOR, Participant("paciente@gmail.com", "guest")]
    alone = match(people, [joiner("email:doctor@clinica.com", "Dra. Ruiz", "doctor@clinica.com")], decided=True)
    assert (by_email(alone)["paciente@gmail.com"].attended, by_email(alone)["paciente@gmail.com"].seconds) == (False, 0)
    early = match(people, [joiner("email:doctor@clinica.com", "Dra. Ruiz", "doctor@clinica.com")], decided=False)
    assert by_email(early)["paciente@gmail.com"].attended is None


def test_emails_match_as_mailboxes_and_one_joiner_matches_one_person():
    people = [DOCTOR, Participant("P@Clínica.com", "guest"), Participant("otro@gmail.com", "guest")]
    result = match(people, [joiner("email:p@xn--clnica-4va.com", "P", "p@xn--clnica-4va.com"),
                            joiner("email:p2@xn--clnica-4va.com", "P again", "P@XN--CLNICA-4VA.COM")], decided=True)
    got = by_email(result)
    assert got["P@Clínica.com"].matched_by == "email"
    # The second joiner with the same mailbox is not a second match; it is left, by elimination, to the last guest.
    assert got["otro@gmail.com"].matched_by == "elimination"


def test_namesakes_are_not_guessed():
    people = [DOCTOR, Participant("a@gmail.com", "guest", invited_name="Ana"),
              Participant("b@gmail.com", "guest", invited_name="ana")]
    result = match(people, [joiner("meet:users/1", "Ana")], decided=True)
    assert all(a.attended is None for a in result.invitees if a.email != "doctor@clinica.com")
    assert [j.key for j in result.others] == ["meet:users/1"]
