"""Pulling identifiers out of typed or recognised speech, and masking them in logs."""
from __future__ import annotations

import logging

import pytest

from actions.numbers import extract_case_number, extract_order_number, extract_phone_tail, extract_serial
from hotline.core.privacy import MaskingFilter, mask_sensitive


@pytest.mark.parametrize("text,serial", [
    ("序列号是C39XK1ABHG7F谢谢", "C39XK1ABHG7F"),
    ("c 3 9 x k 1 a b h g 7 f", "C39XK1ABHG7F"),
    ("ＧＸ７ＫＤ９Ｒ２ＭＮ", "GX7KD9R2MN"),
    ("W1000000002", None),          # an order number is not a serial
    ("13812345678", None),          # nor is a phone number
    ("ABCDEFGHJK", None),           # letters only
    ("C39XK1ABHG7FXX", None),       # too long
])
def test_extract_serial(text, serial):
    assert extract_serial(text) == serial


@pytest.mark.parametrize("text,order", [
    ("订单号W1000000002", "W1000000002"),
    ("w 100 000 0002", "W1000000002"),
    ("W一零零零零零零零零二", "W1000000002"),
    ("1000000002", "W1000000002"),
    ("W12345", None),
])
def test_extract_order_number(text, order):
    assert extract_order_number(text) == order


@pytest.mark.parametrize("text,tail", [
    ("5678", "5678"), ("尾号是五六七八", "5678"), ("我的手机号13900005678", "5678"),
    ("查一下尾号1234", "1234"), ("不知道", None), ("123", None),
])
def test_extract_phone_tail(text, tail):
    assert extract_phone_tail(text) == tail


def test_extract_case_number():
    assert extract_case_number("案例编号123 456 789") == "123456789"
    assert extract_case_number("12345678") is None


def test_mask_sensitive():
    masked = mask_sensitive("我的手机13812345678，序列号C39XK1ABHG7F，订单W1000000002")
    assert "13812345678" not in masked and "138****5678" in masked
    assert "C39XK1ABHG7F" not in masked and "********HG7F" in masked
    assert "W1000000002" in masked  # order numbers are not personal data


def test_masking_filter_rewrites_log_records(caplog):
    logger = logging.getLogger("hotline.test.masking")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="hotline.test.masking"):
        logger.info("caller %s gave serial %s", "13812345678", "DMPXL2Q3JF8K")
    assert "13812345678" not in caplog.text and "DMPXL2Q3JF8K" not in caplog.text
    assert "138****5678" in caplog.text
