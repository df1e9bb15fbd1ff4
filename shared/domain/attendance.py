"""Who attended: Meet's joiners matched to the organizer and the invitees, as the contract's three rules say.

Google reveals a signed-in joiner's email only for accounts of the clinic's own Workspace; a patient with a
personal Google account, an anonymous or a phone joiner has only a display name. So each sync matches:
1. by email, when Google revealed one;
2. by display name: an unmatched joiner whose Meet name equals an unmatched invitee's given `display_name`
   (ignoring case, accents and surrounding spaces), when exactly one joiner and one invitee have that name;
3. by elimination: exactly one invitee and exactly one joiner (other than the organizer's) left unmatched.
An invitee who matched no one is a no-show only when no unmatched joiner is left (it could be them).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from shared.domain.emails import mailbox
from shared.domain.meeting import Joiner, Participant


@dataclass(frozen=True)
class Attendance:
    """The attendance of the organizer or one invitee after a sync."""

    email: str
    attended: bool | None
    joined_at: datetime | None = None
    left_at: datetime | None = None
    seconds: int | None = None
    display_name: str | None = None  # Meet's name of the joiner matched
    matched_by: str | None = None  # email | display_name | elimination
    meet_key: str | None = None


@dataclass(frozen=True)
class Matching:
    invitees: tuple[Attendance, ...]
    others: tuple[Joiner, ...]  # joiners matched to nobody, listed with role `other`


def same_name(a: str | None, b: str | None) -> bool:
    """Display names equal ignoring case, accents and surrounding spaces."""
    return a is not None and b is not None and bool(_fold(a)) and _fold(a) == _fold(b)


def _fold(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def match(people: list[Participant], joiners: list[Joiner], *, decided: bool) -> Matching:
    """Match `joiners` to `people` (the organizer and the invitees); `decided` once the slot is over, when a
    person nobody matched may be called a no-show."""
    by_person: dict[int, tuple[Joiner, str]] = {}
    free = list(joiners)
    emails = {mailbox(p.email): i for i, p in enumerate(people) if p.email}
    for joiner in list(free):
        index = emails.get(mailbox(joiner.email)) if joiner.email else None
        if index is not None and index not in by_person:
            by_person[index] = (joiner, "email")
            free.remove(joiner)
    for i, person in enumerate(people):
        if i in by_person or person.role != "guest" or not person.invited_name:
            continue
        candidates = [j for j in free if same_name(j.display_name, person.invited_name)]
        namesakes = [p for k, p in enumerate(people) if k not in by_person and p.role == "guest"
                     and same_name(p.invited_name, person.invited_name)]
        if len(candidates) == 1 and len(namesakes) == 1:
            by_person[i] = (candidates[0], "display_name")
            free.remove(candidates[0])
    unmatched_guests = [i for i, p in enumerate(people) if p.role == "guest" and i not in by_person]
    if len(unmatched_guests) == 1 and len(free) == 1:
        by_person[unmatched_guests[0]] = (free.pop(), "elimination")
    results = []
    for i, person in enumerate(people):
        assert person.email is not None  # the organizer and the invitees always have one
        if i in by_person:
            joiner, rule = by_person[i]
            results.append(Attendance(email=person.email, attended=True, joined_at=joiner.joined_at,
                                      left_at=joiner.left_at, seconds=joiner.seconds,
                                      display_name=joiner.display_name, matched_by=rule, meet_key=joiner.key))
        elif decided and not free:
            results.append(Attendance(email=person.email, attended=False, seconds=0))
        else:
            results.append(Attendance(email=person.email, attended=None))
    return Matching(invitees=tuple(results), others=tuple(free))
