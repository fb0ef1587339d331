"""How a Mandarin speaker reads a reply aloud: the one place where written forms become words.

Voices read raw text badly: espeak `cmn` reads W123 as English, misaki (Kokoro) reads 4821 as
四千八百二十一 and drops some Latin letters. So every voice gets the reply in spoken form:
identifiers one character at a time (幺 for 1, the telephone convention, so 1 and 7 cannot be
confused on a narrow line), letters by their Chinese names, dates and clock times as words,
amounts, percentages and ranges as numbers, product names as callers say them."""
from __future__ import annotations

import re
from typing import List

_DIGITS = "零幺二三四五六七八九"  # one digit at a time, as on the phone
_LETTERS = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", [
    "诶", "比", "西", "迪", "伊", "艾弗", "吉", "艾尺", "艾", "杰", "开", "艾勒", "艾姆", "艾恩", "欧", "屁",
    "吉吾", "艾儿", "艾丝", "提", "优", "维", "达布溜", "艾克斯", "歪", "贼德"]))
# Product names as Mandarin callers say them (longest first: AppleCare+ before AppleCare).
LEXICON = [("Apple Watch", "爱普手表"), ("Apple ID", "苹果账户"), ("Apple 账户", "苹果账户"),
           ("AppleCare+", "爱普凯尔加"), ("AppleCare", "爱普凯尔"), ("Apple Store", "苹果商店"),
           ("App Store", "应用商店"), ("AirPods", "爱耳机"), ("MacBook", "麦克布克"), ("iPhone", "爱疯"),
           ("iPad", "爱派"), ("iCloud", "爱克劳德"), ("iTunes", "爱图恩斯"), ("iOS", "爱欧艾丝"),
           ("Face ID", "面容识别"), ("Touch ID", "触控识别"), ("Wi-Fi", "无线网络"), ("WiFi", "无线网络"),
           ("Genius Bar", "天才吧"), ("Apple", "苹果"), ("Mac", "麦克"), ("SIM", "西姆"), ("Pro", "普罗"),
           ("Max", "麦克斯"), ("Plus", "加"), ("mini", "迷你"), ("Air", "诶尔")]
_LEXICON = [(re.compile(re.escape(name), re.IGNORECASE), spoken) for name, spoken in LEXICON]
_NOT_ALNUM_BEFORE, _NOT_ALNUM_AFTER = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"


def holds_number(text: str) -> bool:
    """Digits in any spelling (4, 四, 幺): what may be part of an identifier."""
    return any(ch.isnumeric() or ch in _DIGITS for ch in text)


def spell_digits(digits: str) -> str:
    return "".join(_DIGITS[int(d)] for d in digits if d.isdigit())


def spell_code(code: str) -> str:
    """A serial, order or case number, one character at a time."""
    return "".join(_DIGITS[int(c)] if c.isdigit() else _LETTERS.get(c.upper(), c) for c in code)


def number(value: str) -> str:
    """A quantity (12 → 十二, 3.5 → 三点五, 1,299 → 一千二百九十九)."""
    import cn2an

    return cn2an.an2cn(value.replace(",", ""))


def _date(match: re.Match) -> str:
    year, month, day = match.group(1), int(match.group(2)), int(match.group(3))
    return f"{spell_digits(year)}年{number(str(month))}月{number(str(day))}日"


def _clock(match: re.Match) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        return f"{number(str(hour))}点"
    if minute == 30:
        return f"{number(str(hour))}点半"
    return f"{number(str(hour))}点{'零' if minute < 10 else ''}{number(str(minute))}分"


_REWRITES = [
    # 2026-12-07 / 2026/12/07 → 二零二六年十二月七日
    (re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"), _date),
    # years are read digit by digit: 2026年 → 二零二六年
    (re.compile(r"(?<!\d)(\d{4})(?=年)"), lambda m: spell_digits(m.group(1))),
    # 9:00-21:00 → 九点到二十一点
    (re.compile(r"(?<!\d)(\d{1,2}[:：]\d{2})\s*[-~～–—至]\s*(?=\d{1,2}[:：]\d{2}(?!\d))"), lambda m: m.group(1) + "到"),
    # 9:00 → 九点, 18:30 → 十八点半
    (re.compile(r"(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)"), _clock),
    # the hotline's own kind of number: 400 开头 / 400 热线 → 四零零
    (re.compile(r"(?<!\d)(400|800)(?=\s*(?:开头|热线|客服|电话|号码|服务))"), lambda m: spell_digits(m.group(1))),
    # amounts: ¥1,299.00 / 1299元 → 一千二百九十九元
    (re.compile(r"[¥￥]\s*(\d[\d,]*(?:\.\d+)?)"), lambda m: number(re.sub(r"\.0+$", "", m.group(1))) + "元"),
    # percentages: 85% → 百分之八十五
    (re.compile(r"(\d+(?:\.\d+)?)\s*[%％]"), lambda m: "百分之" + number(m.group(1))),
    # ranges: 10-12 / 3~5 → 十到十二 (a hyphen is not 负)
    (re.compile(r"(?<![\dA-Za-z])(\d{1,3})\s*[-~～–—]\s*(\d{1,3})(?![\dA-Za-z])"),
     lambda m: f"{number(m.group(1))}到{number(m.group(2))}"),
    # codes mixing letters and digits (serials, order numbers, tails such as 7F3K): one by one
    (re.compile(_NOT_ALNUM_BEFORE + r"(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{3,}" + _NOT_ALNUM_AFTER),
     lambda m: spell_code(m.group(0))),
    # "123 456 789" was grouped for the listener: each group one digit at a time, a pause between
    (re.compile(r"(?<![\d.])\d+(?:[ \-]\d+)+(?![\d.])"),
     lambda m: "，".join(spell_digits(g) for g in re.split(r"[ \-]", m.group(0)))),
    # phone numbers, case numbers, tails: runs of 4 or more digits, one at a time
    (re.compile(r"(?<![\d.])\d{4,}(?![\d.])"), lambda m: spell_digits(m.group(0))),
    # any other number is a quantity
    (re.compile(r"\d[\d,]*(?:\.\d+)?"), lambda m: number(m.group(0).rstrip(","))),
]
_PUNCTUATION = [("—", "，"), ("…", "。"), ("（", "，"), ("）", "，"), ("(", "，"), (")", "，"),
                ("“", ""), ("”", ""), ("‘", ""), ("’", ""), ("《", ""), ("》", ""), ("「", ""), ("」", ""),
                ("+", "加"), ("&", "和"), ("/", "或"), ("#", "井号"), ("*", "星号")]


def speakable(text: str) -> str:
    """The reply as a Mandarin speaker would read it: only Chinese characters and punctuation."""
    for pattern, spoken in _LEXICON:
        text = pattern.sub(spoken, text)
    for pattern, rewrite in _REWRITES:
        text = pattern.sub(rewrite, text)
    for written, spoken in _PUNCTUATION:
        text = text.replace(written, spoken)
    text = re.sub(r"[A-Za-z]", lambda m: _LETTERS[m.group(0).upper()], text)
    text = re.sub(r"\s+", "", text)
    text = re.sub(r"，(?=[，。？！；：、])", "", text)  # "（…）。" left a comma before the full stop
    return re.sub(r"^[，、；：]+", "", text)


# Characters of identifiers read one by one (digits and letter names): a clause is never split
# between two of them.
_CODE_CHARACTERS = set(_DIGITS + "一" + "".join(_LETTERS.values()))
_jieba_ready = False


def _words(clause: str) -> List[str]:
    global _jieba_ready
    import jieba

    if not _jieba_ready:  # product names stay whole (爱普凯尔加, not 爱普 | 凯尔加)
        for _, spoken in LEXICON:
            jieba.add_word(spoken)
        _jieba_ready = True
    return jieba.lcut(clause)


def quick_start(clause: str, first_chars: int = 6, shortest: int = 3) -> List[str]:
    """A long clause split at word boundaries into pieces that grow (6, 12, 24 … characters), so
    the first piece is heard after a fraction of the clause's synthesis time and each next piece
    is rendered while the one before it plays. Never inside an identifier read one character at
    a time, and no piece shorter than `shortest` characters."""
    if len(clause) <= first_chars + shortest:
        return [clause]
    units: List[str] = []  # words, with an identifier's characters kept in one unit
    for word in _words(clause):
        if units and units[-1][-1:] in _CODE_CHARACTERS and word[:1] in _CODE_CHARACTERS:
            units[-1] += word
        else:
            units.append(word)
    pieces: List[str] = []
    current, limit, used = "", first_chars, 0
    for unit in units:
        if current and len(current) + len(unit) > limit and len(clause) - used >= shortest:
            pieces.append(current)
            current, limit = "", limit * 2
        current += unit
        used += len(unit)
    return pieces + [current] if current else pieces
