"""A recognition error model learned from real Whisper output: how often a reference character is
substituted, dropped or has a character inserted after it, and what a substitute sounds like
(the same toneless syllable, a fuzzy-equal one, or something else).

Learned from `bench/stt_decoding.py --hypotheses` on data/eval/stt_dev (real recordings through an
8 kHz μ-law line), then applied to typed text to simulate spoken questions for a labelled dev set
(`hotline eval nlu FILE --spoken`). As training augmentation it measured worse than the hand-made
homophone list on cross-validation (README, "NLU accuracy"), so hotline/trainer/augment.py keeps that."""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from hotline.trainer.augment import common_characters
from hotline.core.text import content, fuzzy_syllable

KINDS = ("same_sound", "near_sound", "other")


def align(reference: str, hypothesis: str) -> List[Tuple[str, str]]:
    """Levenshtein alignment as (ref, hyp) pairs; "" marks a deletion or an insertion."""
    n, m = len(reference), len(hypothesis)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1,
                             cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]))
    pairs, i, j = [], n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            pairs.append((reference[i - 1], hypothesis[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((reference[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", hypothesis[j - 1]))
            j -= 1
    return pairs[::-1]


@lru_cache(maxsize=8192)
def _syllable(ch: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(ch, style=Style.NORMAL)[0]


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff"


@dataclass
class ErrorModel:
    substitution: float = 0.0
    deletion: float = 0.0
    insertion: float = 0.0
    kinds: Dict[str, float] = field(default_factory=lambda: {k: 1 / 3 for k in KINDS})
    observed: Dict[str, List[str]] = field(default_factory=dict)  # reference char → what was heard
    characters: int = 0  # reference characters it was learned from

    @classmethod
    def learn(cls, pairs: Iterable[Tuple[str, str]]) -> "ErrorModel":
        counts, kinds, observed, chars = Counter(), Counter(), {}, 0
        for reference, hypothesis in pairs:
            for ref, hyp in align(content(reference).lower(), content(hypothesis).lower()):
                chars += bool(ref)
                if ref and hyp and ref != hyp:
                    counts["substitution"] += 1
                    if _is_han(ref) and _is_han(hyp):
                        same = _syllable(ref) == _syllable(hyp)
                        near = fuzzy_syllable(_syllable(ref)) == fuzzy_syllable(_syllable(hyp))
                        kinds["same_sound" if same else "near_sound" if near else "other"] += 1
                        observed.setdefault(ref, []).append(hyp)
                elif ref and not hyp:
                    counts["deletion"] += 1
                elif hyp and not ref:
                    counts["insertion"] += 1
        total = sum(kinds.values()) or 1
        return cls(substitution=counts["substitution"] / max(chars, 1), deletion=counts["deletion"] / max(chars, 1),
                   insertion=counts["insertion"] / max(chars, 1),
                   kinds={k: kinds[k] / total for k in KINDS}, observed=observed, characters=chars)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> "ErrorModel":
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def apply(self, text: str, rng: random.Random, scale: float = 1.0) -> str:
        """One simulated recognition of `text`: only Chinese characters are changed (identifiers and
        Latin words are left to the entity patterns, which have their own spoken-form handling)."""
        out = []
        for ch in text:
            if _is_han(ch):
                roll = rng.random()
                if roll < self.deletion * scale:
                    continue
                if roll < (self.deletion + self.substitution) * scale:
                    ch = self._substitute(ch, rng)
                out.append(ch)
                if rng.random() < self.insertion * scale:
                    out.append(rng.choice(common_characters()[:500]))
            else:
                out.append(ch)
        return "".join(out)

    def _substitute(self, ch: str, rng: random.Random) -> str:
        kind = rng.choices(KINDS, weights=[self.kinds[k] for k in KINDS])[0]
        if kind == "other":
            heard = self.observed.get(ch)
            if heard:
                return rng.choice(heard)
        syllable = _syllable(ch)
        if kind == "other":  # never heard in the dev set: a common character that rhymes
            rhyme = _rhyme(syllable)
            pool = [c for c in common_characters()[:3000] if c != ch and _rhyme(_syllable(c)) == rhyme]
            return rng.choice(pool[:40]) if pool else ch
        target = (lambda s: s == syllable) if kind == "same_sound" else \
            (lambda s: s != syllable and fuzzy_syllable(s) == fuzzy_syllable(syllable))
        pool = [c for c in _by_syllable().get(syllable if kind == "same_sound" else fuzzy_syllable(syllable), [])
                if c != ch and target(_syllable(c))]
        return rng.choice(pool[:12]) if pool else ch


def _rhyme(syllable: str) -> str:
    fuzzy = fuzzy_syllable(syllable)
    return fuzzy.lstrip("bpmfdtlgkhjqxzcsrwy") or fuzzy


@lru_cache(maxsize=1)
def _by_syllable() -> Dict[str, List[str]]:
    """Common characters by exact and by fuzzy syllable (most frequent first)."""
    table: Dict[str, List[str]] = {}
    for ch in common_characters()[:5000]:
        syllable = _syllable(ch)
        table.setdefault(syllable, []).append(ch)
        fuzzy = fuzzy_syllable(syllable)
        if fuzzy != syllable:
            table.setdefault(fuzzy, []).append(ch)
    return table


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="learn the recognition error model from transcripts")
    parser.add_argument("hypotheses", help="JSON rows with reference and hypothesis (bench/stt_decoding.py)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = json.loads(Path(args.hypotheses).read_text(encoding="utf-8"))
    model = ErrorModel.learn((r["reference"], r["hypothesis"]) for r in rows)
    model.save(Path(args.out))
    print(f"learned from {model.characters} characters: substitution {model.substitution:.3f}, "
          f"deletion {model.deletion:.3f}, insertion {model.insertion:.3f}, kinds "
          + ", ".join(f"{k} {v:.2f}" for k, v in model.kinds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
