"""Pulling identifiers out of what callers type or say. Speech recognisers write digits as
Chinese numerals, insert spaces between spelled letters and use full-width characters."""
from __future__ import annotations

import re
import unicodedata
from typing import Optional

from actions.privacy import SERIAL

_CHINESE_DIGITS = str.maketrans("零〇一幺二两三四五六七八九", "0011223456789")
ORDER_NUMBER = re.compile(r"(?<![A-Za-z0-9])[Ww](\d{10})(?![0-9])")
BARE_TEN_DIGITS = re.compile(r"(?<![A-Za-z0-9])(\d{10})(?![0-9])")
CASE_NUMBER = re.compile(r"(?<![A-Za-z0-9])([1-9]\d{8})(?![0-9])")
PHONE_NUMBER = re.compile(r"(?<![0-9])1[3-9]\d{9}(?![0-9])")
FOUR_DIGITS = re.compile(r"(?<![A-Za-z0-9])(\d{4})(?![0-9])")


def normalize(text: str) -> str:
    """Full-width → ASCII, Chinese digits → Arabic, and spaces/dashes inside codes removed."""
    text = unicodedata.normalize("NFKC", text or "").translate(_CHINESE_DIGITS)
    # "C 3 9 X K 1" or "W-100-000-0002": join runs of letters/digits split by spaces or dashes.
    return re.sub(r"(?<=[A-Za-z0-9])[\s\-]+(?=[A-Za-z0-9])", "", text)


def extract_serial(text: str) -> Optional[str]:
    match = SERIAL.search(normalize(text))
    return match.group(0).upper() if match else None


def extract_order_number(text: str) -> Optional[str]:
    normal = normalize(text)
    match = ORDER_NUMBER.search(normal) or BARE_TEN_DIGITS.search(normal)
    return f"W{match.group(1)}" if match else None


def extract_case_number(text: str) -> Optional[str]:
    match = CASE_NUMBER.search(normalize(text))
    return match.group(1) if match else None


def extract_phone_tail(text: str) -> Optional[str]:
    normal = normalize(text)
    phone = PHONE_NUMBER.search(normal)
    if phone:
        return phone.group(0)[-4:]
    matches = FOUR_DIGITS.findall(normal)
    return matches[-1] if matches else None
