"""The records service on a real SQLite file and on the machine's PostgreSQL."""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text

from actions.records.attempts import AttemptGuard, AttemptPolicy
from actions.records.client import Asker, Check, SqlRecordsClient
from actions.records.seed import seed
from tests.conftest import POSTGRES_URL, require_service

TODAY = dt.date(2026, 11, 25)


def check_records(client: SqlRecordsClient) -> None:
    assert seed(client, today=TODAY) > 0
    assert seed(client, today=TODAY) == 0  # idempotent

    iphone = client.warranty("c39xk1abhg7f")  # case-insensitive
    assert iphone.coverage == "limited_warranty" and iphone.covered_until > TODAY
    assert client.warranty("DMPXL2Q3JF8K").coverage == "applecare"
    assert client.warranty("FVFXC3JKQ6L4").coverage == "expired"
    assert client.warranty("NOPE00000000") is None

    assert client.order_exists("W1000000002") and not client.order_exists("W0000000000")
    assert client.verified_order("W1000000002", "1234") is None
    order = client.verified_order("W1000000002", "5678")
    assert order.status == "shipped" and order.carrier == "顺丰速运"

    sender = f"s-{uuid.uuid4().hex[:6]}"
    case = client.create_case(sender, "crash", "应用闪退")
    assert len(case.case_number) == 9 and case.case_number.isdigit()
    assert client.case(case.case_number).summary == "应用闪退"
    repair = client.book_repair(sender, "iPhone", "屏幕碎了", "上海", "周六上午")
    assert client.case(repair.case_number).appointment == {
        "device": "iPhone", "fault": "屏幕碎了", "city": "上海", "preferred_time": "周六上午"}
    assert client.case("000000000") is None
    check_attempts(client)
    check_case_ownership(client)


def check_attempts(client: SqlRecordsClient) -> None:
    """Failed checks are counted on the server per record and per asker, whatever the dialogue does."""
    clock = [dt.datetime(2026, 11, 26, 9, 0)]
    client.attempts = AttemptGuard(client.Session, AttemptPolicy(), now=lambda: clock[0])
    later = lambda minutes: clock.__setitem__(0, clock[0] + dt.timedelta(minutes=minutes))  # noqa: E731
    run = uuid.uuid4().hex[:6]
    a, b, c, d = (Asker(f"{name}-{run}") for name in "abcd")

    assert client.check_order("W1000000001", "0000", a) == Check()
    assert client.check_order("W9999999999", "1234", a) == Check()  # no such order: the same answer
    assert client.check_order("W1000000001", "1111", b) == Check()
    assert client.check_order("W1000000001", "2222", b) == Check(locked=True)  # third on this order
    assert client.check_order("W1000000001", "1234", c) == Check(locked=True)  # a new session: still locked
    later(16)
    assert client.check_order("W1000000001", "1234", c).record.order_number == "W1000000001"
    for tail in ("1", "2", "3"):
        client.check_order("W1000000001", tail * 4, d)
    later(16)  # the second lockout lasts twice as long
    assert client.check_order("W1000000001", "1234", c).locked
    later(15)
    assert client.check_order("W1000000001", "1234", c).record is not None

    e = Asker(f"e-{run}", client=f"203.0.113.{len(run)}")
    for number in ("W1000000002", "W1000000003", "W1000000004", "W1000000001"):
        assert not client.check_order(number, "0000", e).locked
    assert client.check_order("W1000000005", "0000", e).locked  # fifth failure of this session
    assert client.check_order("W1000000002", "5678", e).locked  # even the right tail
    later(61)  # e's single failures on other orders have left the one-hour window
    f = Asker(f"f-{run}")
    for _ in range(2):  # the record count starts again after a success; the asker's does not
        for _ in range(2):
            assert not client.check_order("W1000000004", "0000", f).locked
        assert client.check_order("W1000000004", "1357", f).record is not None
    assert client.check_order("W1000000003", "0000", f).locked  # f's fifth failure


def check_case_ownership(client: SqlRecordsClient) -> None:
    owner, stranger = Asker(f"own-{uuid.uuid4().hex[:6]}", caller_hash="ab" * 32), Asker(f"x-{uuid.uuid4().hex[:6]}")
    case = client.create_case(owner.sender_id, "crash", "应用闪退", caller_hash=owner.caller_hash)
    assert client.create_case(owner.sender_id, "crash", "又闪退").case_number == case.case_number  # one open case
    assert client.check_case(case.case_number, owner).record.case_number == case.case_number
    assert client.check_case(case.case_number, stranger) == Check()  # exists, but not theirs: same as missing
    assert client.check_case("000000000", stranger) == Check()
    new_call = Asker(f"call-{uuid.uuid4().hex[:6]}", caller_hash=owner.caller_hash)  # the same number calls again
    assert client.check_case(case.case_number, new_call).record is not None


def test_records_on_sqlite(tmp_path):
    check_records(SqlRecordsClient(f"sqlite:///{tmp_path / 'records.db'}"))


def test_records_on_postgresql():
    require_service("127.0.0.1", 5432, "PostgreSQL")
    schema = f"hotline_test_{uuid.uuid4().hex[:8]}"
    admin = SqlRecordsClient(POSTGRES_URL)
    with admin.engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        client = SqlRecordsClient(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
        check_records(client)
        client.engine.dispose()
    finally:
        with admin.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
