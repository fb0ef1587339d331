"""Pulling identifiers out of what callers type or say. Speech recognisers write digits as
Chinese numerals, insert spaces between spelled letters and use full-width characters."""
from __future__ import annotations

import re
import unicodedata
from typing import Optional

from hotline.core.privacy import SERIAL

_CHINESE_DIGITS = str.maketrans("零〇一幺二两三四五六七八九", "0011223456789")
_NUMERALS = "零〇一幺二两三四五六七八九"
# Digits and numerals, possibly split by spaces or dashes: a spoken or typed number.
_DIGIT_RUN = re.compile(rf"[0-9{_NUMERALS}](?:[ \t\-]*[0-9{_NUMERALS}])*")
_WORD_CHAR = re.compile(rf"[\u4e00-\u9fff](?<![{_NUMERALS}])")


def _spoken_digits(match: re.Match) -> str:
    """Numerals of a number → digits. A lone 一 or 两 is a word (一直, 一下, 两个), and so is a
    numeral split off the end of a number that starts the next word ("123456789 一直没人回")."""
    run, text, end = match.group(0), match.string, match.end()
    if len(run) == 1 and run in _NUMERALS:
        return run
    keep = ""
    if (run[-1] in _NUMERALS and run[-2] in " \t-" and end < len(text) and _WORD_CHAR.match(text[end])):
        run, keep = run[:-1], run[-1]
    return run.translate(_CHINESE_DIGITS) + keep


# "C 3 9 X K 1", "W-100-000-0002", "138 1234 5678": short groups split by spaces or dashes are one
# code; a long group next to another value ("W1000000002 5678") is two values.
_SPLIT_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{1,6}(?:[ \t\-]+[A-Za-z0-9]{1,6})+(?![A-Za-z0-9])")
# re.ASCII: \d is 0-9 only (NFKC keeps Arabic-Indic and other digits as they are).
ORDER_NUMBER = re.compile(r"(?<![A-Za-z0-9])[Ww](\d{10})(?![0-9])", re.ASCII)
BARE_TEN_DIGITS = re.compile(r"(?<![A-Za-z0-9])(\d{10})(?![0-9])", re.ASCII)
CASE_NUMBER = re.compile(r"(?<![A-Za-z0-9])([1-9]\d{8})(?![0-9])", re.ASCII)
PHONE_NUMBER = re.compile(r"(?:(?<![0-9])|(?<=86))1[3-9]\d{9}(?![0-9])", re.ASCII)  # also after +86 / 0086
FOUR_DIGITS = re.compile(r"(?<![A-Za-z0-9])(\d{4})(?![0-9])", re.ASCII)


def normalize(text: str, join_all: bool = False) -> str:
    """Full-width → ASCII, spoken Chinese digits → Arabic, and spaces/dashes inside codes removed
    (`join_all`: between any letters and digits, for codes split unevenly: "W0 000000000")."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _DIGIT_RUN.sub(_spoken_digits, text)
    if join_all:  # also across the commas and stops a recogniser writes between spoken groups
        return re.sub(r"(?<=[A-Za-z0-9])[\s\-,，、.。]+(?=[A-Za-z0-9])", "", text)
    return _SPLIT_CODE.sub(lambda m: re.sub(r"[ \t\-]+", "", m.group(0)), text)


def _search(pattern: re.Pattern, text: str) -> Optional[re.Match]:
    """The first match in the text with short groups joined, else with every group joined."""
    return pattern.search(normalize(text)) or pattern.search(normalize(text, join_all=True))


def extract_serial(text: str) -> Optional[str]:
    match = _search(SERIAL, text)
    return match.group(0).upper() if match else None


def extract_order_number(text: str) -> Optional[str]:
    match = _search(ORDER_NUMBER, text) or _search(BARE_TEN_DIGITS, text)
    return f"W{match.group(1)}" if match else None


def extract_case_number(text: str) -> Optional[str]:
    match = _search(CASE_NUMBER, text)
    return match.group(1) if match else None


def extract_phone_tail(text: str) -> Optional[str]:
    phone = _search(PHONE_NUMBER, text)
    if phone:
        return phone.group(0)[-4:]
    matches = FOUR_DIGITS.findall(normalize(text))
    return matches[-1] if matches else None
