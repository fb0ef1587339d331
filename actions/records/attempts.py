"""Counting failed identity checks on the server, so that guessing a phone tail or a case number
is not a matter of patience.

Every check names its subjects: the record it is about ("order:W1000000002") and everyone asking
("session:…", "client:203.0.113.9", "caller:<hash>"). A subject that fails `limit` times within
`window` is locked for `lockout`, doubled at each further lockout (capped at `max_lockout`); while
any subject of a check is locked the check is refused without looking at the answer. Nothing in
the dialogue (a form reset, a new session) touches these rows."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from sqlalchemy.exc import IntegrityError

from actions.records.models import VerificationAttempts

RECORD_LIMIT = 3  # per order or case: the caller gets three tries, as before
ASKER_LIMIT = 5   # per session or calling number, across records
# Per client address: higher, because many honest users share one address (carrier-grade NAT,
# an office); it stops one address from trying record after record.
ADDRESS_LIMIT = 20


@dataclass(frozen=True)
class AttemptPolicy:
    record_limit: int = RECORD_LIMIT
    asker_limit: int = ASKER_LIMIT
    address_limit: int = ADDRESS_LIMIT
    window: dt.timedelta = dt.timedelta(hours=1)
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    max_lockout: dt.timedelta = dt.timedelta(hours=24)

    def limit(self, subject: str) -> int:
        if subject.startswith(("order:", "case:")):
            return self.record_limit
        return self.address_limit if subject.startswith("client:") else self.asker_limit


class AttemptGuard:
    def __init__(self, session_factory, policy: AttemptPolicy = AttemptPolicy(),
                 now: Callable[[], dt.datetime] = dt.datetime.utcnow) -> None:
        self.Session, self.policy, self._now = session_factory, policy, now

    def locked(self, subjects: Iterable[str]) -> bool:
        now = self._now()
        with self.Session() as session:
            for subject in set(subjects):
                row = session.get(VerificationAttempts, subject)
                if row is not None and row.locked_until is not None and row.locked_until > now:
                    return True
        return False

    def failed(self, subjects: Sequence[str]) -> bool:
        """Counts one failure against each subject; True if any of them is now locked."""
        return any([self._fail(subject) for subject in dict.fromkeys(subjects)])

    def succeeded(self, record_subject: str) -> None:
        """The record's own count starts again; the askers' counts stay (a caller who knows one
        tail must not be able to reset their guesses at another)."""
        with self.Session.begin() as session:
            row = session.get(VerificationAttempts, record_subject)
            if row is not None:
                row.failures, row.first_failure_at = 0, None

    def _fail(self, subject: str) -> bool:
        for _ in range(3):  # two servers may insert the first failure at once: retry on the key
            try:
                with self.Session.begin() as session:
                    return self._count(session, subject)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not record a failed check for {subject}")

    def _count(self, session, subject: str) -> bool:
        now, policy = self._now(), self.policy
        row = session.get(VerificationAttempts, subject, with_for_update=True)
        if row is None:
            row = VerificationAttempts(subject=subject, failures=0, lockouts=0)
            session.add(row)
        if row.first_failure_at is None or now - row.first_failure_at > policy.window:
            row.failures, row.first_failure_at = 0, now
        row.failures += 1
        if row.failures >= policy.limit(subject):
            row.locked_until = now + min(policy.lockout * (2 ** row.lockouts), policy.max_lockout)
            row.lockouts += 1
            row.failures, row.first_failure_at = 0, None
        session.flush()
        return row.locked_until is not None and row.locked_until > now
