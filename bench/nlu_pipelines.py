"""Which intent pipeline: feature blocks × classifier settings, by grouped k-fold cross-validation
on data/nlu and by accuracy on the dev sets (typed, and through the recognition error model).
Not a test: prints numbers. The features are the functions the Rasa components use
(hotline/nlu/), computed once here so that dozens of variants take seconds, not hours.

Usage: .venv/bin/python bench/nlu_pipelines.py [--folds 5] [--dev data/eval/nlu_dev.tsv]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # BLAS threads fighting over 2 cores tripled the run time
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hotline.trainer.evaluation import read_labelled_tsv  # noqa: E402
from hotline.nlu import features  # noqa: E402
from hotline.trainer.nlu_data import NluData, plain  # noqa: E402
from typing import Dict, Iterable, List, Mapping, Sequence  # noqa: E402

VARIANTS = {
    # name: block weights (0 = block off), C
    "word+char (shipped 0.1)": ({"word": 1, "char": 1}, 1.0),
    "e5": ({"e5": 1}, 10.0),
    "word+char+e5": ({"word": 1, "char": 1, "e5": 1}, 5.0),
    "word+char+e5×2": ({"word": 1, "char": 1, "e5": 2}, 5.0),
    "char+e5×2": ({"char": 1, "e5": 2}, 5.0),
    "word+char+e5×2+pinyin×0.5": ({"word": 1, "char": 1, "e5": 2, "pinyin": 0.5}, 5.0),
    "word+char+e5×2+pinyin×1": ({"word": 1, "char": 1, "e5": 2, "pinyin": 1}, 5.0),
    "word+char+e5×2+pinyin×1 C=10": ({"word": 1, "char": 1, "e5": 2, "pinyin": 1}, 10.0),
    "word+char+e5×2+pinyin×1 C=2": ({"word": 1, "char": 1, "e5": 2, "pinyin": 1}, 2.0),
    "char+e5×2+pinyin×1 C=10": ({"char": 1, "e5": 2, "pinyin": 1}, 10.0),
    "word+char+e5×2+pinyin×1.5 C=10": ({"word": 1, "char": 1, "e5": 2, "pinyin": 1.5}, 10.0),
}


def embed_cached(texts: Iterable[str]) -> Dict[str, np.ndarray]:
    texts = list(dict.fromkeys(texts))
    vectors = features.embed(texts)
    return dict(zip(texts, vectors))


def jieba_words(text: str) -> List[str]:
    import jieba

    return [w for w in jieba.lcut(text.lower()) if w.strip()]



class BlockModel:
    """The benchmark's stand-in for the Rasa graph: same blocks, same combination, same classifier.
    Word and char blocks approximate Rasa's JiebaTokenizer + CountVectorsFeaturizer."""

    def __init__(self, weights: Mapping[str, float], c: float) -> None:
        from sklearn.feature_extraction.text import CountVectorizer


        self.weights, self.c = dict(weights), c
        self.vectorizers = {
            "word": CountVectorizer(analyzer=jieba_words),
            "char": CountVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=True),
            "pinyin": CountVectorizer(analyzer=features.pinyin_ngrams),
        }

    def _blocks(self, texts: Sequence[str], cache: Mapping[str, np.ndarray], fit: bool):
        blocks = {}
        for name, vectorizer in self.vectorizers.items():
            if self.weights.get(name):
                blocks[name] = vectorizer.fit_transform(texts) if fit else vectorizer.transform(texts)
        if self.weights.get("e5"):
            blocks["e5"] = np.stack([cache[t] if t in cache else features.embed([t])[0] for t in texts])
        return features.combine(blocks, self.weights)

    def fit(self, texts, labels, cache) -> "BlockModel":
        self.clf = features.logistic_regression(self.c).fit(self._blocks(texts, cache, fit=True), labels)
        return self

    def predict_proba(self, texts, cache) -> np.ndarray:
        return self.clf.predict_proba(self._blocks(texts, cache, fit=False))

    def predict(self, texts, cache) -> List[str]:
        return list(self.clf.classes_[self.predict_proba(texts, cache).argmax(axis=1)])


def load_training(augment_variants: int, error_model=None):
    from hotline.trainer.augment import noisy

    if error_model is not None:
        noisy = error_model.apply  # noqa: F811 - same signature: (text, rng)
    data = NluData(ROOT / "data" / "nlu", ROOT / "bot" / "domain.yml")
    rows = []  # (text, intent, group)
    rng = random.Random(13)
    for intent, texts in sorted(data.examples().items()):
        for text in texts:
            group = len(rows)
            rows.append((plain(text), intent, group))
            for _ in range(augment_variants):
                rows.append((plain(noisy(text, rng)), intent, group))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--augment", type=int, default=2, help="recogniser-like variants per example")
    parser.add_argument("--dev", action="append", default=[], help="labelled TSV (repeatable)")
    parser.add_argument("--only", default="", help="|-separated variant names")
    parser.add_argument("--augment-with", choices=["homophones", "errors"], default="homophones")
    parser.add_argument("--spoken-seeds", default="1,2,3",
                        help="simulate recognition of each dev set with the error model, these seeds")
    args = parser.parse_args()
    from hotline.trainer.errors import ErrorModel

    error_model = ErrorModel.load(ROOT / "data" / "recognition_errors.json")
    from sklearn.model_selection import GroupKFold

    rows = load_training(args.augment, error_model if args.augment_with == "errors" else None)
    texts = [t for t, _, _ in rows]
    y = np.array([i for _, i, _ in rows])
    groups = np.array([g for _, _, g in rows])
    original = np.array([i == 0 or rows[i - 1][2] != g for i, (_, _, g) in enumerate(rows)])
    devs = {}
    for path in args.dev:
        labelled = read_labelled_tsv(Path(path))
        devs[Path(path).stem] = labelled
        for seed in [int(s) for s in args.spoken_seeds.split(",") if s]:
            rng = random.Random(seed)
            devs[f"{Path(path).stem} spoken{seed}"] = [(error_model.apply(t, rng), i) for t, i in labelled]
    started = time.perf_counter()
    embed_texts = set(texts) | {t for rows_ in devs.values() for t, _ in rows_}
    cache = embed_cached(sorted(embed_texts))
    print(f"{len(rows)} training rows ({int(original.sum())} written, {args.augment} variants each); "
          f"embedded {len(embed_texts)} texts in {time.perf_counter() - started:.1f} s")
    columns = list(dict.fromkeys(name.replace(" spoken", "|").split("|")[0] + (" spoken" if "spoken" in name else "")
                                 for name in devs))
    header = f"{'variant':<34}{'CV acc':>8}{'CV F1':>8}" + "".join(f"{name[:20]:>22}" for name in columns)
    print(header)
    chosen = [v for v in VARIANTS if not args.only or v in args.only.split("|")]
    for name in chosen:
        weights, c = VARIANTS[name]
        predicted = np.empty(len(rows), dtype=object)
        for train_idx, test_idx in GroupKFold(args.folds).split(texts, y, groups):
            model = BlockModel(weights, c).fit([texts[i] for i in train_idx], y[train_idx], cache)
            predicted[test_idx] = model.predict([texts[i] for i in test_idx], cache)
        mask = original
        acc = float(np.mean(predicted[mask] == y[mask]))
        f1 = macro_f1(y[mask], predicted[mask])
        line = f"{name:<34}{acc:>8.3f}{f1:>8.3f}"
        if devs:
            model = BlockModel(weights, c).fit(texts, y, cache)
            accuracy = {}
            for dev_name, dev in devs.items():
                guess = model.predict([t for t, _ in dev], cache)
                column = dev_name.split(" spoken")[0] + (" spoken" if "spoken" in dev_name else "")
                accuracy.setdefault(column, []).append(np.mean(np.array(guess) == np.array([i for _, i in dev])))
            line += "".join(f"{np.mean(accuracy[c]):>22.3f}" for c in columns)
        print(line, flush=True)
    return 0


def macro_f1(gold, predicted) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, predicted, average="macro"))


if __name__ == "__main__":
    sys.exit(main())
