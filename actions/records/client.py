"""The client interface the actions use, and its SQL implementation."""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Protocol, Sequence

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from actions.records.attempts import AttemptGuard, AttemptPolicy
from actions.records.models import Base, Device, Order, RepairAppointment, SupportCase


@dataclass(frozen=True)
class DeviceWarranty:
    serial_number: str
    product: str
    purchased_on: dt.date
    limited_warranty_until: dt.date
    applecare_until: Optional[dt.date]
    as_of: dt.date

    @property
    def coverage(self) -> str:
        """`applecare`, `limited_warranty` or `expired`, as of `as_of`."""
        if self.applecare_until and self.as_of <= self.applecare_until:
            return "applecare"
        if self.as_of <= self.limited_warranty_until:
            return "limited_warranty"
        return "expired"

    @property
    def covered_until(self) -> dt.date:
        return max(d for d in (self.limited_warranty_until, self.applecare_until) if d)


@dataclass(frozen=True)
class OrderView:
    order_number: str
    items: str
    status: str
    placed_on: dt.date
    carrier: Optional[str]
    estimated_delivery: Optional[dt.date]
    delivered_on: Optional[dt.date]


@dataclass(frozen=True)
class CaseView:
    case_number: str
    topic: str
    summary: str
    status: str
    created_at: dt.datetime
    appointment: Optional[dict] = None


@dataclass(frozen=True)
class Asker:
    """Who is asking: the conversation, and where known the client address and the calling number
    (as a hash). Each is a subject of the attempt count; the session and number also own cases."""
    sender_id: str
    client: Optional[str] = None
    caller_hash: Optional[str] = None

    def subjects(self) -> list:
        subjects = [f"session:{self.sender_id}"]
        if self.client:
            subjects.append(f"client:{self.client}")
        if self.caller_hash:
            subjects.append(f"caller:{self.caller_hash}")
        return subjects


@dataclass(frozen=True)
class Check:
    """The outcome of an identity check: the record if it passed; `locked` if it was not even tried.
    A missing record and a wrong answer are the same outcome, so neither tells a guesser anything."""
    record: Optional[object] = None
    locked: bool = False


class RecordsClient(Protocol):
    def warranty(self, serial_number: str) -> Optional[DeviceWarranty]: ...
    def order_exists(self, order_number: str) -> bool: ...
    def verified_order(self, order_number: str, phone_tail: str) -> Optional[OrderView]: ...
    def create_case(self, sender_id: str, topic: str, summary: str) -> CaseView: ...
    def book_repair(self, sender_id: str, device: str, fault: str, city: str, preferred_time: str) -> CaseView: ...
    def case(self, case_number: str) -> Optional[CaseView]: ...
    def check_order(self, order_number: str, phone_tail: str, asker: Asker) -> Check: ...
    def check_case(self, case_number: str, asker: Asker) -> Check: ...


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the Rasa tracker, the action server and the seeder share SQLite files safely.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class SqlRecordsClient:
    """Records on any SQLAlchemy database (SQLite file by default, PostgreSQL by URL)."""

    def __init__(self, database_url: str, today: Optional[callable] = None,
                 attempt_policy: AttemptPolicy = AttemptPolicy()) -> None:
        # A pre-ping costs a round trip per lookup; only a networked database needs it.
        self.engine = create_engine(database_url, future=True,
                                    pool_pre_ping=not database_url.startswith("sqlite"))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.Session = sessionmaker(self.engine, future=True, expire_on_commit=False)
        self._today = today or dt.date.today
        self.attempts = AttemptGuard(self.Session, attempt_policy)

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)
        # Records created before cases remembered their caller: add the column in place.
        if "caller_hash" not in {c["name"] for c in inspect(self.engine).get_columns("support_cases")}:
            with self.engine.begin() as connection:
                connection.execute(text("ALTER TABLE support_cases ADD COLUMN caller_hash VARCHAR(64)"))

    def warranty(self, serial_number: str) -> Optional[DeviceWarranty]:
        with self.Session() as session:
            device = session.get(Device, serial_number.upper())
            if device is None:
                return None
            return DeviceWarranty(
                serial_number=device.serial_number,
                product=device.product,
                purchased_on=device.purchased_on,
                limited_warranty_until=device.limited_warranty_until,
                applecare_until=device.applecare_until,
                as_of=self._today(),
            )

    def order_exists(self, order_number: str) -> bool:
        with self.Session() as session:
            return session.get(Order, order_number.upper()) is not None

    def verified_order(self, order_number: str, phone_tail: str) -> Optional[OrderView]:
        """The order, only if `phone_tail` matches the last four digits of its phone."""
        with self.Session() as session:
            order = session.get(Order, order_number.upper())
            if order is None or not secrets.compare_digest(order.phone[-4:], phone_tail):
                return None
            return OrderView(
                order_number=order.order_number,
                items=order.items,
                status=order.status,
                placed_on=order.placed_on,
                carrier=order.carrier,
                estimated_delivery=order.estimated_delivery,
                delivered_on=order.delivered_on,
            )

    def check_order(self, order_number: str, phone_tail: str, asker: Asker) -> Check:
        subjects = [f"order:{order_number.upper()}"] + asker.subjects()
        if self.attempts.locked(subjects):
            return Check(locked=True)
        order = self.verified_order(order_number, phone_tail)
        if order is None:
            return Check(locked=self.attempts.failed(subjects))
        self.attempts.succeeded(subjects[0])
        return Check(record=order)

    def check_case(self, case_number: str, asker: Asker) -> Check:
        """A case is described only to whoever opened it: the same conversation or calling number."""
        subjects = [f"case:{case_number}"] + asker.subjects()
        if self.attempts.locked(subjects):
            return Check(locked=True)
        with self.Session() as session:
            row = session.get(SupportCase, case_number)
            owned = row is not None and (row.sender_id == asker.sender_id or (
                asker.caller_hash is not None and row.caller_hash == asker.caller_hash))
            view = _case_view(row) if owned else None
        if view is None:
            return Check(locked=self.attempts.failed(subjects))
        self.attempts.succeeded(subjects[0])
        return Check(record=view)

    def create_case(self, sender_id: str, topic: str, summary: str, caller_hash: Optional[str] = None) -> CaseView:
        """One open case per conversation and topic: asking again returns it instead of a new one."""
        with self.Session() as session:
            row = (session.query(SupportCase)
                   .filter_by(sender_id=sender_id, topic=topic, status="open")
                   .order_by(SupportCase.created_at.desc()).first())
            if row is not None and row.appointment is None:
                return _case_view(row)
        return self._insert_case(sender_id, topic, summary, appointment=None, caller_hash=caller_hash)

    def book_repair(self, sender_id: str, device: str, fault: str, city: str, preferred_time: str,
                    caller_hash: Optional[str] = None) -> CaseView:
        summary = f"预约维修：{device}，故障：{fault}，城市：{city}，时间：{preferred_time}"
        appointment = dict(device=device, fault=fault, city=city, preferred_time=preferred_time)
        return self._insert_case(sender_id, "repair_appointment", summary, appointment=appointment,
                                 caller_hash=caller_hash)

    def case(self, case_number: str) -> Optional[CaseView]:
        with self.Session() as session:
            row = session.get(SupportCase, case_number)
            return _case_view(row) if row else None

    def _insert_case(self, sender_id: str, topic: str, summary: str, appointment: Optional[dict],
                     caller_hash: Optional[str] = None) -> CaseView:
        for _ in range(10):  # a random 9-digit number collides rarely; retry on the primary key
            number = str(100_000_000 + secrets.randbelow(900_000_000))
            now = dt.datetime.utcnow()
            row = SupportCase(case_number=number, sender_id=sender_id, topic=topic, summary=summary,
                              status="open", created_at=now, updated_at=now, caller_hash=caller_hash)
            if appointment:
                row.appointment = RepairAppointment(**appointment)
            try:
                with self.Session.begin() as session:
                    session.add(row)
                    session.flush()
                    view = _case_view(row)
                return view
            except IntegrityError:
                continue
        raise RuntimeError("could not allocate a case number")


def _case_view(row: SupportCase) -> CaseView:
    appointment = None
    if row.appointment is not None:
        a = row.appointment
        appointment = dict(device=a.device, fault=a.fault, city=a.city, preferred_time=a.preferred_time)
    return CaseView(case_number=row.case_number, topic=row.topic, summary=row.summary,
                    status=row.status, created_at=row.created_at, appointment=appointment)


@lru_cache()
def records_client(database_url: Optional[str] = None) -> SqlRecordsClient:
    from hotline.core.settings import get_settings

    return SqlRecordsClient(database_url or get_settings().resolved_database_url())
