"""Deterministic demo records. Dates are relative to the seeding day so that the demo
devices keep their coverage story (in warranty / AppleCare+ / expired) whenever it runs."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from actions.records.client import SqlRecordsClient
from actions.records.models import Device, Order, SupportCase

YEAR = dt.timedelta(days=365)


def demo_devices(today: dt.date) -> list:
    def bought(days_ago: int, product: str, serial: str, applecare_years: Optional[int] = None) -> Device:
        purchased = today - dt.timedelta(days=days_ago)
        return Device(serial_number=serial, product=product, purchased_on=purchased,
                      limited_warranty_until=purchased + YEAR,
                      applecare_until=purchased + applecare_years * YEAR if applecare_years else None)

    return [
        bought(120, "iPhone 15 Pro", "C39XK1ABHG7F"),
        bought(500, "iPad Air", "DMPXL2Q3JF8K", applecare_years=2),
        bought(900, "MacBook Air", "FVFXC3JKQ6L4"),
        bought(30, "AirPods Pro", "GX7KD9R2MN"),
        bought(400, "Apple Watch Series 9", "H4TZ8WQ1LP3V"),
    ]


def demo_orders(today: dt.date) -> list:
    def days(n: int) -> dt.date:
        return today + dt.timedelta(days=n)

    return [
        Order(order_number="W1000000001", phone="13800001234", items="iPhone 16 256GB 黑色",
              status="processing", placed_on=days(-1), estimated_delivery=days(4)),
        Order(order_number="W1000000002", phone="13900005678", items="MacBook Air 13 英寸",
              status="shipped", placed_on=days(-3), carrier="顺丰速运", estimated_delivery=days(2)),
        Order(order_number="W1000000003", phone="13700002468", items="AirPods Pro",
              status="delivered", placed_on=days(-8), carrier="顺丰速运", delivered_on=days(-3)),
        Order(order_number="W1000000004", phone="13600001357", items="iPad mini",
              status="cancelled", placed_on=days(-10)),
    ]


def demo_cases(today: dt.date) -> list:
    created = dt.datetime.combine(today - dt.timedelta(days=2), dt.time(9, 30))
    return [
        SupportCase(case_number="100000001", sender_id="demo", topic="crash",
                    summary="iPhone 反复重启，已建议更新系统，待送修检测", status="in_progress",
                    created_at=created, updated_at=created),
    ]


def seed(client: SqlRecordsClient, today: Optional[dt.date] = None) -> int:
    """Create the schema and insert any missing demo rows; existing rows are left alone."""
    today = today or dt.date.today()
    client.create_schema()
    added = 0
    with client.Session.begin() as session:
        for row in demo_devices(today) + demo_orders(today) + demo_cases(today):
            key = row.__mapper__.primary_key_from_instance(row)
            if session.get(type(row), key[0]) is None:
                session.add(row)
                added += 1
    return added
