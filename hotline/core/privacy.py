"""Masking of personal data wherever text leaves the conversation (logs, case summaries, the
trainers' inbox and the training data written from it): phone numbers, ID-card numbers, e-mail
addresses and serial numbers.

Phone and ID-card numbers are found in any spelling a caller types or a speech recogniser
writes: ASCII or full-width digits, Chinese numerals (幺 for 1, 〇/零 for 0, mixed with digits),
groups split by spaces, dashes, commas or brackets, with a +86 / 0086 prefix. Order numbers
(W + 10 digits), 9-digit case numbers, prices, dates and times are left alone."""
from __future__ import annotations

import bisect
import logging
import re
import unicodedata
from typing import Iterator, List, Sequence, Tuple

SERIAL = re.compile(
    r"(?<![A-Za-z0-9])(?![Ww]\d{10}(?![A-Za-z0-9]))"
    r"(?=[A-HJ-NP-Za-hj-np-z0-9]*[0-9])(?=[A-HJ-NP-Za-hj-np-z0-9]*[A-HJ-NP-Za-hj-np-z])"
    r"[A-HJ-NP-Za-hj-np-z0-9]{10,12}(?![A-Za-z0-9])"
)

# Digits in every spelling: ASCII, full-width, and the Chinese numerals callers and recognisers use.
CHINESE_DIGITS = {"零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
                  "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
DIGITS = {**{str(d): str(d) for d in range(10)}, **{chr(0xFF10 + d): str(d) for d in range(10)}, **CHINESE_DIGITS}
_DIGIT_CLASS = "0-9\uff10-\uff19" + "".join(CHINESE_DIGITS)
# What may stand between the groups of one number: spaces, dashes, commas (a recogniser's pauses),
# brackets round an area code. At most 4 characters, so that backtracking stays bounded.
_SEPARATORS = r"[\s\-\u2010-\u2015\uff0d,\uff0c\u3001()\uff08\uff09]{1,4}"
# A run of digits and separators: an optional + in front, an optional X at the end (ID cards)
# that is not the start of a word.
_RUN = re.compile(rf"[+\uff0b]?[{_DIGIT_CLASS}](?:(?:{_SEPARATORS})?[{_DIGIT_CLASS}])*"
                  rf"(?:(?:{_SEPARATORS})?[Xx\uff38\uff58](?![A-Za-z\uff21-\uff3a\uff41-\uff5a]))?")
# A number glued to a letter on its left is a code (W1000000002, a serial), not a phone number.
_BLOCKS_START = re.compile(r"[A-Za-z0-9\uff21-\uff3a\uff41-\uff5a]")
# Digits just before or after `***` are what an earlier masking left visible ("138****5678",
# "010-****5678"): they never begin or end a number again, so that masking twice changes nothing.
_MASKED_AFTER = re.compile(rf"(?:{_SEPARATORS})?\*\*\*")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")

# Patterns on the digits of a candidate, in ASCII (+ and a final X kept).
MOBILE = re.compile(r"(?P<prefix>\+86|0086|86|0)?(?P<head>1[3-9]\d)\d{4}(?P<tail>\d{4})")
LANDLINE = re.compile(r"(?:(?P<country>\+86|0086)0?|0)(?:10|2\d)(?P<local8>\d{8})"
                      r"|(?:(?P<country3>\+86|0086)0?|0)[3-9]\d\d(?P<local>\d{7,8})")
ID_CARD = re.compile(r"[1-9]\d{5}(?:18|19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX]")
_ANY_NUMBER = re.compile("|".join(re.sub(r"\?P<\w+>", "", p.pattern) for p in (ID_CARD, MOBILE, LANDLINE)))
LONGEST = 20  # tokens: "+86" and a 16-digit landline, or an 18-character ID card

_EMAIL_CHAR = "A-Za-z0-9\uff21-\uff3a\uff41-\uff5a\uff10-\uff19"
_EMAIL_PUNCTUATION = r"._%+\-\uff0e\uff3f\uff05\uff0b\uff0d"
_LABEL = rf"[{_EMAIL_CHAR}](?:[{_EMAIL_CHAR}\-\uff0d]*[{_EMAIL_CHAR}])?"  # one part of a domain name
EMAIL = re.compile(
    # From the start of a word only (one attempt per word: no quadratic backtracking), and not
    # from the visible tail of a masked number; punctuation before the address is kept as it is.
    rf"(?<![{_EMAIL_CHAR}{_EMAIL_PUNCTUATION}@\uff20])(?<!\*\*\*)(?P<lead>[{_EMAIL_PUNCTUATION}]*)"
    # (an address masked before, "z***@example.com", is one too: its domain is left alone again)
    rf"(?P<local>[{_EMAIL_CHAR}](?:\*\*\*|[{_EMAIL_CHAR}{_EMAIL_PUNCTUATION}]*))[@\uff20]"
    rf"(?P<domain>{_LABEL}(?:[.\uff0e]{_LABEL})*[.\uff0e][A-Za-z\uff21-\uff3a\uff41-\uff5a]{{2,}})"
    rf"(?![{_EMAIL_CHAR}@\uff20\-\uff0d])"  # the whole domain, and "a@b.cc@d.ee" is not an address
)


def _ascii(text: str) -> str:
    """Digits in any spelling → ASCII; a full-width + → +; everything else as written."""
    return "".join(DIGITS.get(ch, "+" if ch == "\uff0b" else ch) for ch in text)


def _kind(ch: str) -> str:
    if ch in CHINESE_DIGITS:
        return "han"
    if "0" <= ch <= "9":
        return "ascii"
    if ch in "+\uff0b":
        return "plus"
    if ch in "Xx\uff38\uff58":
        return "x"
    return "wide"


def _replacement(text: str, positions: List[int], value: str) -> str:
    """The masked form of one number (`value`: its characters in ASCII, one per position)."""
    if len(value) == 18 and ID_CARD.fullmatch(value):
        return "*" * 14 + value[-4:]
    mobile = MOBILE.fullmatch(value)
    if mobile:
        # Whatever stood before the number itself (+86, 0086 and its separator) stays, in ASCII.
        prefix = _ascii(text[positions[0]:positions[mobile.start("head")]]) if mobile.group("prefix") else ""
        return f"{prefix}{mobile.group('head')}****{mobile.group('tail')}"
    landline = LANDLINE.fullmatch(value)
    if landline:
        group = "local8" if landline.group("local8") is not None else "local"
        local = landline.group(group)
        # Country and area code stay as written (in ASCII): "010-****5678", "(021) ****5678".
        return _ascii(text[positions[0]:positions[landline.start(group)]]) + "*" * (len(local) - 4) + local[-4:]
    return ""


def _scan(text: str, positions: List[int], value: str, cut: List[bool], lo: int, hi: int) -> List[Tuple[int, int, str]]:
    """Numbers among tokens lo..hi: from the left, the longest that begins and ends at a cut."""
    found, start = [], lo
    while start < hi:
        end = None
        if cut[start]:
            end = next((end for end in range(min(hi, start + LONGEST), start + 10, -1)
                        if cut[end] and _ANY_NUMBER.fullmatch(value, start, end)), None)
        if end is None:
            start += 1
            continue
        found.append((start, end, _replacement(text, positions[start:end], value[start:end])))
        start = end
    return found


def number_spans(text: str) -> Iterator[Tuple[int, int, str]]:
    """(start, end, masked form) of each phone or ID-card number in `text`, left to right."""
    for run in _RUN.finditer(text):
        chunk = run.group(0)
        if sum(ch in DIGITS for ch in chunk) < 11:  # the shortest phone number has 11 digits
            continue
        positions = [run.start() + i for i, ch in enumerate(chunk) if ch in DIGITS or _kind(ch) in ("plus", "x")]
        kinds = [_kind(text[p]) for p in positions]
        value = "".join(DIGITS.get(text[p], "+" if kinds[i] == "plus" else "X") for i, p in enumerate(positions))
        n = len(positions)
        # Where a number may begin or end inside the run. Clear cuts: a separator, a change of
        # spelling ("W1000000002一三八…"). Then, for what is left, also between two Chinese
        # numerals, which are glued to the words around them ("统一一三八…", "…七八一下").
        clear = [i == 0 or i == n or positions[i] != positions[i - 1] + 1 or kinds[i] != kinds[i - 1]
                 for i in range(n + 1)]
        loose = [clear[i] or kinds[i] == kinds[i - 1] == "han" for i in range(n)] + [True]
        for cut in (clear, loose):
            if run.start() > 0 and _BLOCKS_START.match(text[run.start() - 1]) or text.endswith("***", 0, run.start()):
                cut[0] = False
            if _MASKED_AFTER.match(text, run.end()):
                cut[n] = False
        matches = _scan(text, positions, value, clear, 0, n)
        edges = [0] + [edge for start, end, _ in matches for edge in (start, end)] + [n]
        for lo, hi in zip(edges[::2], edges[1::2]):  # the stretches between clear matches
            matches += _scan(text, positions, value, loose, lo, hi)
        for start, end, masked in sorted(matches):
            yield positions[start], positions[end - 1] + 1, masked


def _mask_email(match: "re.Match") -> str:
    local = unicodedata.normalize("NFKC", match.group("local"))
    return f"{match.group('lead')}{local[0]}***@{unicodedata.normalize('NFKC', match.group('domain'))}"


def _mask_numbers(text: str) -> str:
    parts, last = [], 0
    for start, end, masked in number_spans(text):
        # A number spelled in Chinese numerals glued to ASCII digits or letters ("W1000000002一三八…")
        # keeps a space between them once it is written in ASCII.
        glued_before = start and _ASCII_ALNUM.match(text[start - 1]) and not _ASCII_ALNUM.match(text[start])
        glued_after = end < len(text) and _ASCII_ALNUM.match(text[end]) and not _ASCII_ALNUM.match(text[end - 1])
        before, after = " " if glued_before else "", " " if glued_after else ""
        parts += [text[last:start], before, masked, after]
        last = end
    return "".join(parts) + text[last:] if parts else text


def mask_sensitive(text: str) -> str:
    """`13812345678`, `一三八 一二三四 五六七八` → `138****5678`; `010-12345678` → `010-****5678`;
    an ID card → `**************123X`; `zhangsan@example.com` → `z***@example.com`;
    `C39XK1ABHG7F` → `********HG7F`."""
    if not text:
        return text
    # Masking can change what a neighbour looks like (a number now in ASCII next to another one),
    # so it is repeated until nothing changes: masking masked text changes nothing.
    for _ in range(10):
        masked = _mask_once(text)
        if masked == text:
            break
        text = masked
    return text


def _mask_once(text: str) -> str:
    # An address is masked as a whole; numbers and serials are looked for around addresses.
    parts, last = [], 0
    for email in list(EMAIL.finditer(text)) + [None]:
        original = text[last:email.start() if email else len(text)]
        masked = _mask_numbers_and_serials(original)
        if masked and masked != original:  # a number now in ASCII keeps apart from an address next to it
            if last and _ASCII_ALNUM.match(masked[0]) and not _ASCII_ALNUM.match(original[0]):
                masked = " " + masked
            if email and _ASCII_ALNUM.match(masked[-1]) and not _ASCII_ALNUM.match(original[-1]):
                masked += " "
        parts.append(masked)
        if email:
            parts.append(_mask_email(email))
            last = email.end()
    return "".join(parts)


def _mask_numbers_and_serials(text: str) -> str:
    text = _mask_numbers(text)
    return SERIAL.sub(lambda m: "*" * (len(m.group(0)) - 4) + m.group(0)[-4:], text)


def message_groups(messages: Sequence[str]) -> List[List[int]]:
    """Indices of consecutive messages of one caller, grouped where a phone or ID-card number runs
    across them ("138" / "1234" / "5678": a recogniser ends a turn at each pause)."""
    joined, starts = "", []
    for message in messages:
        starts.append(len(joined))
        joined += message.strip() + " "
    first_of = list(range(len(messages)))
    for start, end, _ in number_spans(joined):
        first, last = bisect.bisect_right(starts, start) - 1, bisect.bisect_left(starts, end) - 1
        for i in range(first + 1, last + 1):
            first_of[i] = first_of[first]
    groups: List[List[int]] = []
    for i in range(len(messages)):
        if first_of[i] == i:
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def mask_messages(messages: Sequence[str]) -> List[str]:
    """`mask_sensitive` for consecutive messages of one caller; a number dictated over several
    messages is masked too, and those messages become one entry."""
    return [mask_sensitive(" ".join(messages[i].strip() for i in group)) for group in message_groups(messages)]


class MaskingFilter(logging.Filter):
    """Rewrites each log record's message with `mask_sensitive` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as is rather than dropped
            return True
        masked = mask_sensitive(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_installed = False


def install_log_masking() -> None:
    """Mask on the root logger and on every handler, including ones added later by the SDK. A
    server's entry point calls it once (the action server, the gateway); a second call does nothing."""
    global _installed
    if _installed:
        return
    _installed = True
    masking = MaskingFilter()
    root = logging.getLogger()
    root.addFilter(masking)
    for handler in root.handlers:
        handler.addFilter(masking)
    # Handlers added after this call get the filter too.
    original_add_handler = logging.Logger.addHandler

    def add_handler(self, handler):
        handler.addFilter(masking)
        return original_add_handler(self, handler)

    logging.Logger.addHandler = add_handler
