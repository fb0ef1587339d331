"""Speech-robust NLU: recogniser-like variants of the training examples.

Callers' text comes from Whisper, which writes homophones and near-homophones (保修→报修,
激活→机活, 闪退→闪腿, 苹果→平果), drops punctuation, mixes Traditional characters and switches
between digits and Chinese numerals. At training time each hand-written example gets a few such
variants, generated reproducibly from a seed into models/ (never into data/nlu/)."""
from __future__ import annotations

import random
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional

from hotline.trainer.nlu_data import ANNOTATION, NluData

AUGMENT_VERSION = "1"
# Confusions Whisper makes on Mandarin phone audio: similar initials/finals (southern accents,
# narrow-band audio) — z/zh, c/ch, s/sh, n/l, f/h, -n/-ng.
NEAR = [("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"), ("h", "f")]
FINALS = [("ang", "an"), ("eng", "en"), ("ing", "in")]
DIGITS = "零一二三四五六七八九"
PUNCTUATION = re.compile(r"[，。？！、；：,.?!;:\s]+")


@lru_cache(maxsize=1)
def _common_chars() -> Dict[str, int]:
    """Character frequency from jieba's dictionary: homophones are drawn from common characters."""
    import jieba

    counts: Dict[str, int] = defaultdict(int)
    with open(jieba.get_dict_file().name, encoding="utf-8") as handle:
        for line in handle:
            word, freq = line.split(" ")[:2]
            for ch in word:
                counts[ch] += int(freq)
    return counts


@lru_cache(maxsize=1)
def common_characters() -> List[str]:
    """Common Chinese characters, most frequent first (also the pool of hotline/trainer/errors.py)."""
    common = _common_chars()
    return sorted((c for c, n in common.items() if n > 2000 and "\u4e00" <= c <= "\u9fff"), key=lambda c: -common[c])


@lru_cache(maxsize=1)
def _by_sound() -> Dict[str, List[str]]:
    from pypinyin import Style, lazy_pinyin

    table: Dict[str, List[str]] = defaultdict(list)
    for ch in common_characters()[:5000]:
        table[lazy_pinyin(ch, style=Style.NORMAL)[0]].append(ch)
    return table


def near_sounds(syllable: str) -> List[str]:
    variants = [syllable]
    for a, b in NEAR:
        if syllable.startswith(a):
            variants.append(b + syllable[len(a):])
        elif syllable.startswith(b) and not syllable.startswith(("zh", "ch", "sh")):
            variants.append(a + syllable[len(b):])
    for a, b in FINALS:
        if syllable.endswith(a):
            variants.append(syllable[: -len(a)] + b)
        elif syllable.endswith(b):
            variants.append(syllable[: -len(b)] + a)
    return list(dict.fromkeys(variants))


def sound_alike(ch: str, rng: random.Random, near: bool) -> Optional[str]:
    from pypinyin import Style, lazy_pinyin

    syllable = lazy_pinyin(ch, style=Style.NORMAL)[0]
    table = _by_sound()
    pool = [c for s in (near_sounds(syllable) if near else [syllable]) for c in table.get(s, [])[:12] if c != ch]
    return rng.choice(pool) if pool else None


def noisy(text: str, rng: random.Random, rate: float = 0.15) -> str:
    """One recogniser-like rendering of `text` (entity annotations, if any, are kept intact)."""
    parts = re.split(f"({ANNOTATION.pattern})", text)
    out = []
    skip = 0
    for part in parts:
        if skip:
            skip -= 1
            continue
        if part and ANNOTATION.fullmatch(part):
            out.append(part)
            skip = 4  # the regex's four groups follow in the split result
            continue
        out.append(_noisy_plain(part or "", rng, rate))
    return "".join(out).strip()


def _noisy_plain(text: str, rng: random.Random, rate: float) -> str:
    chars = list(text)
    for i, ch in enumerate(chars):
        if "\u4e00" <= ch <= "\u9fff" and rng.random() < rate:
            chars[i] = sound_alike(ch, rng, near=rng.random() < 0.3) or ch
    text = "".join(chars)
    if rng.random() < 0.7:
        text = PUNCTUATION.sub(lambda m: " " if rng.random() < 0.5 else "", text)
    if rng.random() < 0.3:
        text = re.sub(r"\d", lambda m: DIGITS[int(m.group(0))], text)
    if rng.random() < 0.2:
        text = _to_traditional().convert(text)
    return text


@lru_cache(maxsize=1)
def _to_traditional():
    from opencc import OpenCC

    return OpenCC("s2t")  # loading the dictionaries once: augmentation calls this thousands of times


def augment(data: NluData, seed: int = 13, per_example: int = 2) -> Dict[str, List[str]]:
    rng = random.Random(seed)
    result: Dict[str, List[str]] = {}
    for intent, texts in sorted(data.examples().items()):
        seen = set(texts)
        variants = []
        for text in texts:
            for _ in range(per_example):
                variant = noisy(text, rng)
                if variant and variant not in seen:
                    seen.add(variant)
                    variants.append(variant)
        result[intent] = variants
    return result


def write_augmented(data: NluData, path: Path, seed: int = 13, per_example: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['version: "3.1"', f"# generated by hotline.trainer.augment (version {AUGMENT_VERSION}, seed {seed}); do not edit",
             "nlu:"]
    for intent, variants in augment(data, seed, per_example).items():
        if variants:
            lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {v}" for v in variants]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
