"""The records service on a real SQLite file and on the machine's PostgreSQL."""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text

from actions.records.client import SqlRecordsClient
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
