"""SQLAlchemy tables of the records service (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


class Device(Base):
    __tablename__ = "devices"

    serial_number = Column(String(12), primary_key=True)
    product = Column(String(64), nullable=False)
    purchased_on = Column(Date, nullable=False)
    limited_warranty_until = Column(Date, nullable=False)
    applecare_until = Column(Date, nullable=True)


class Order(Base):
    __tablename__ = "orders"

    order_number = Column(String(11), primary_key=True)
    phone = Column(String(20), nullable=False)
    items = Column(String(200), nullable=False)
    status = Column(String(20), nullable=False)  # processing | shipped | delivered | cancelled
    placed_on = Column(Date, nullable=False)
    carrier = Column(String(40), nullable=True)
    estimated_delivery = Column(Date, nullable=True)
    delivered_on = Column(Date, nullable=True)


class SupportCase(Base):
    __tablename__ = "support_cases"

    case_number = Column(String(9), primary_key=True)
    sender_id = Column(String(128), nullable=False, index=True)
    # sha256 of the caller's phone number (Twilio `From`), so a later call from it may follow up.
    caller_hash = Column(String(64), nullable=True, index=True)
    topic = Column(String(64), nullable=False)
    summary = Column(Text, nullable=False)
    status = Column(String(20), nullable=False, default="open")  # open | in_progress | closed
    created_at = Column(DateTime, nullable=False, default=dt.datetime.utcnow)
    updated_at = Column(DateTime, nullable=False, default=dt.datetime.utcnow)

    appointment = relationship("RepairAppointment", uselist=False, back_populates="case")


class RepairAppointment(Base):
    __tablename__ = "repair_appointments"

    id = Column(Integer, primary_key=True, autoincrement=True)
    case_number = Column(String(9), ForeignKey("support_cases.case_number"), nullable=False, unique=True)
    device = Column(String(40), nullable=False)
    fault = Column(String(200), nullable=False)
    city = Column(String(40), nullable=False)
    preferred_time = Column(String(60), nullable=False)

    case = relationship("SupportCase", back_populates="appointment")


class VerificationAttempts(Base):
    """Failed identity checks per subject ("order:W…", "case:…", "session:…", "client:…", "caller:…").
    Kept in the records database so that no dialogue event (a form reset, a new session) clears it."""
    __tablename__ = "verification_attempts"

    subject = Column(String(200), primary_key=True)
    failures = Column(Integer, nullable=False, default=0)
    lockouts = Column(Integer, nullable=False, default=0)  # each lockout doubles the next one
    first_failure_at = Column(DateTime, nullable=True)
    locked_until = Column(DateTime, nullable=True)
