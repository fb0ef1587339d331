"""Evaluation reports for trainers: cross-validation, a saved report folder (JSON, Markdown,
confusion-matrix PNG) and a per-intent comparison with an earlier report."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional

from hotline.trainer.evaluation import FALLBACK, score
from hotline.core.settings import Settings
from hotline.trainer.training import rasa_env


def cross_validate(settings: Settings, folds: int = 5, data: Optional[Path] = None) -> Dict[str, object]:
    """Rasa's own k-fold cross-validation on the training data, in the same report shape."""
    root = settings.project_root
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, "-m", "rasa", "test", "nlu", "--cross-validation", "--folds", str(folds),
                                 "--successes", "--config", str(root / "bot/config.yml"),
                                 "--nlu", str(data or root / "data/nlu"), "--out", out],
                                cwd=out, env=rasa_env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("rasa test nlu failed:\n" + result.stdout[-2000:] + result.stderr[-2000:])
        rows = []
        for name in ("intent_successes.json", "intent_errors.json"):
            path = Path(out) / name
            if path.exists():
                rows += json.loads(path.read_text())
    predictions = [{"text": r["text"], "intent": r["intent"], "predicted": r["intent_prediction"]["name"],
                    "confidence": round(float(r["intent_prediction"]["confidence"]), 4)} for r in rows]
    report = score([p["intent"] for p in predictions], [p["predicted"] for p in predictions])
    # The same keys as evaluate_nlu's report: format_report prints the fallback rate.
    fallback_rate = round(sum(p["predicted"] == FALLBACK for p in predictions) / len(predictions), 4) if predictions else 0.0
    report.update(mode=f"{folds}-fold cross-validation", predictions=predictions, unknown_labels={},
                  fallback_rate=fallback_rate)
    return report


def save_report(report: Dict[str, object], folder: Path, compare_with: Optional[Dict[str, object]] = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    confusion_png(report, folder / "confusion_matrix.png")
    (folder / "summary.md").write_text(markdown(report, compare_with), encoding="utf-8")
    return folder


def load_report(path: Path) -> Dict[str, object]:
    path = path / "report.json" if path.is_dir() else path
    return json.loads(path.read_text(encoding="utf-8"))


def compare(new: Dict[str, object], old: Dict[str, object]) -> Dict[str, object]:
    intents = sorted(set(new["per_intent"]) | set(old["per_intent"]))
    rows = []
    for intent in intents:
        before = old["per_intent"].get(intent, {}).get("f1")
        after = new["per_intent"].get(intent, {}).get("f1")
        delta = None if before is None or after is None else round(after - before, 4)
        rows.append({"intent": intent, "f1_before": before, "f1_after": after, "delta": delta})
    return {"accuracy_delta": round(new["accuracy"] - old["accuracy"], 4),
            "macro_f1_delta": round(new["macro_f1"] - old["macro_f1"], 4),
            "per_intent": sorted(rows, key=lambda r: (r["delta"] is None, r["delta"] or 0))}


def markdown(report: Dict[str, object], compare_with: Optional[Dict[str, object]] = None) -> str:
    lines = [f"# NLU evaluation ({report.get('mode', 'test file')})", "",
             f"- examples: {report['n']}", f"- accuracy: {report['accuracy']:.3f}",
             f"- macro-F1: {report['macro_f1']:.3f}", "", "![confusion matrix](confusion_matrix.png)", "",
             "| intent | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for intent, m in sorted(report["per_intent"].items(), key=lambda kv: kv[1]["f1"]):
        lines.append(f"| {intent} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    if report.get("confusions"):
        lines += ["", "## Most confused", "", "| intent | predicted as | count |", "|---|---|---|"]
        lines += [f"| {c['intent']} | {c['predicted']} | {c['count']} |" for c in report["confusions"][:20]]
    if compare_with is not None:
        diff = compare(report, compare_with)
        lines += ["", "## Compared with the previous report", "",
                  f"- accuracy: {diff['accuracy_delta']:+.3f}", f"- macro-F1: {diff['macro_f1_delta']:+.3f}", "",
                  "| intent | F1 before | F1 after | change |", "|---|---|---|---|"]
        for row in diff["per_intent"]:
            fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
            change = "—" if row["delta"] is None else f"{row['delta']:+.3f}"
            lines.append(f"| {row['intent']} | {fmt(row['f1_before'])} | {fmt(row['f1_after'])} | {change} |")
    return "\n".join(lines) + "\n"


def confusion_png(report: Dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = sorted(set(report["per_intent"]) | {p["predicted"] for p in report.get("predictions", [])
                                                 if p.get("predicted") and p.get("intent") in report["per_intent"]})
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for p in report.get("predictions", []):
        if p.get("intent") in index and p.get("predicted") in index:
            matrix[index[p["intent"]], index[p["predicted"]]] += 1
    size = max(6, len(labels) * 0.42)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("labelled")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_title(f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
