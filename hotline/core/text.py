"""Text views the NLU components featurize: what counts as content, and toneless fuzzy pinyin."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import List

# Whisper's Mandarin errors are mostly same- or near-sound characters, and southern accents and
# narrow-band audio blur these pairs: map each pair to one spelling so 激活/击火 share features.
FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))
_ASCII_RUN = re.compile(r"[a-z0-9]+|[^\x00-\x7f]")


def content(text: str) -> str:
    """The text without spaces, punctuation, symbols, emoji or invisible characters (zero-width
    spaces, BOMs): empty when a message says nothing a classifier should read."""
    return _letters_and_digits(text, separator="")


def _letters_and_digits(text: str, separator: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return "".join(ch if unicodedata.category(ch)[0] in "LN" else separator for ch in text)


def has_content(text: str) -> bool:
    return bool(content(text))


def fuzzy_syllable(syllable: str) -> str:
    for spelled, fuzzy in FUZZY_INITIALS:
        if syllable.startswith(spelled) and not (spelled == "n" and syllable == "ng"):
            syllable = fuzzy + syllable[len(spelled):]
            break
    for spelled, fuzzy in FUZZY_FINALS:
        if syllable.endswith(spelled):
            syllable = syllable[: -len(spelled)] + fuzzy
            break
    return syllable


_HAN_OR_OTHER = re.compile(r"([\u3400-\u9fff]+)|([^\u3400-\u9fff]+)")


@lru_cache(maxsize=8192)
def _han_syllables(run: str) -> tuple:
    from pypinyin import Style, lazy_pinyin

    return tuple(fuzzy_syllable(s) for s in lazy_pinyin(run, style=Style.NORMAL))


def fuzzy_pinyin(text: str) -> List[str]:
    """Toneless fuzzy syllables of the Chinese characters; other letters and digits as lower-case
    words (iOS 17 → ios, 17)."""
    syllables: List[str] = []
    for han, other in _HAN_OR_OTHER.findall(_letters_and_digits(text, " ").lower()):
        syllables.extend(_han_syllables(han) if han else _ASCII_RUN.findall(other))
    return syllables
