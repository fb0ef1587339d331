"""`hotline eval nlu FILE.tsv`: parse every row with the trained model and score intents."""
from __future__ import annotations

import asyncio
import csv
import os
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from hotline.core.settings import Settings

FALLBACK = "nlu_fallback"


def read_labelled_tsv(path: Path) -> List[Tuple[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not reader.fieldnames or not {"text", "intent"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must be 'text<TAB>intent', found {reader.fieldnames}")
        return [((row["text"] or "").strip(), (row["intent"] or "").strip()) for row in reader
                if (row.get("text") or "").strip()]


def load_agent(settings: Settings):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    import logging

    import structlog
    from rasa.core.agent import Agent

    # In-process Rasa logs through structlog's default printer on stdout; keep stdout for the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("rasa").setLevel(logging.WARNING)

    return Agent.load(str(settings.model_path))


def classify(agent, texts: Iterable[str]) -> List[Dict[str, object]]:
    """Top intent per text, read past the fallback so the classifier's own choice is scored."""

    async def run() -> List[Dict[str, object]]:
        results = []
        for text in texts:
            parsed = await agent.parse_message(text)
            ranking = [r for r in parsed.get("intent_ranking", []) if r.get("name") != FALLBACK]
            top = ranking[0] if ranking else {"name": None, "confidence": 0.0}
            results.append({"predicted": top["name"], "confidence": round(float(top["confidence"]), 4),
                            "fallback": (parsed.get("intent") or {}).get("name") == FALLBACK})
        return results

    return asyncio.run(run())


def score(gold: List[str], predicted: List[str]) -> Dict[str, object]:
    labels = sorted(set(gold))
    per_intent: Dict[str, Dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                             "f1": round(f1, 4), "support": tp + fn}
    n = len(gold)
    accuracy = sum(g == p for g, p in zip(gold, predicted)) / n if n else 0.0
    macro_f1 = sum(v["f1"] for v in per_intent.values()) / len(per_intent) if per_intent else 0.0
    confusions = Counter((g, p) for g, p in zip(gold, predicted) if g != p)
    return {"accuracy": round(accuracy, 4), "macro_f1": round(macro_f1, 4), "n": n,
            "per_intent": per_intent,
            "confusions": [{"intent": g, "predicted": p, "count": c} for (g, p), c in confusions.most_common()]}


def evaluate_nlu(settings: Settings, path: Path, agent=None, noise_seed: int = None,
                 spoken_seed: int = None) -> Dict[str, object]:
    rows = read_labelled_tsv(path)
    if spoken_seed is not None:  # simulated recognition: the error model learned from real Whisper output
        import random

        from hotline.trainer.errors import ErrorModel

        model, rng = ErrorModel.load(settings.recognition_errors_path), random.Random(spoken_seed)
        rows = [(model.apply(text, rng), intent) for text, intent in rows]
    if noise_seed is not None:  # the same kind of recogniser noise as training augmentation, other seed
        import random

        from hotline.trainer.augment import noisy

        rng = random.Random(noise_seed)
        rows = [(noisy(text, rng), intent) for text, intent in rows]
    agent = agent or load_agent(settings)
    known = set(agent.domain.intents)
    results = classify(agent, [text for text, _ in rows])
    scored = [(text, intent, r) for (text, intent), r in zip(rows, results) if intent in known]
    report = score([intent for _, intent, _ in scored], [r["predicted"] for _, _, r in scored])
    report["unknown_labels"] = dict(Counter(intent for _, intent in rows if intent not in known))
    report["fallback_rate"] = round(sum(r["fallback"] for _, _, r in scored) / len(scored), 4) if scored else 0.0
    report["predictions"] = [{"text": text, "intent": intent, **r} for (text, intent), r in zip(rows, results)]
    return report


def format_report(report: Dict[str, object]) -> str:
    lines = [f"n={report['n']}  accuracy={report['accuracy']:.3f}  macro-F1={report['macro_f1']:.3f}  "
             f"fallback rate={report['fallback_rate']:.3f}", "",
             f"{'intent':<24}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for intent, m in sorted(report["per_intent"].items()):
        lines.append(f"{intent:<24}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9}")
    if report["confusions"]:
        lines += ["", "confused (intent → predicted: count)"]
        lines += [f"  {c['intent']} → {c['predicted']}: {c['count']}" for c in report["confusions"]]
    if report["unknown_labels"]:
        lines += ["", "labels not in the domain (not scored): "
                  + ", ".join(f"{k} ({v})" for k, v in report["unknown_labels"].items())]
    return "\n".join(lines)
