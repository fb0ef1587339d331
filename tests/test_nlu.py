"""NLU quality: evaluation sets written separately from the training data, and cross-validation.

Floors (README, "NLU accuracy", for the measurements): the test set (never used to choose anything)
measured 0.964 typed, floor 0.92 — the target; the dev set through the recognition error model
measured 0.90–0.93 over three seeds, floor 0.85 — the spoken target; the 3-fold run trains on a third
less data than the shipped model, so its floor sits below the 5-fold measurement. A drop under a
floor means new data or config made the classifier worse, not noise."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from hotline.trainer.training import rasa_env

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "data" / "eval" / "nlu_heldout.tsv"
EVAL_SETS = sorted((ROOT / "data" / "eval").glob("*.tsv"))
HELDOUT_ACCURACY_FLOOR = 0.88
HELDOUT_MACRO_F1_FLOOR = 0.85
TEST_ACCURACY_FLOOR = 0.92
SPOKEN_DEV_ACCURACY_FLOOR = 0.85
CV_ACCURACY_FLOOR = 0.80


def training_texts():
    texts = set()
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            if "intent" in item:
                texts |= {line[2:].strip() for line in item["examples"].splitlines() if line.strip()}
    return texts


def test_evaluation_sets_are_not_in_the_training_data():
    import re

    assert len(EVAL_SETS) >= 3
    plain = {re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", t) for t in training_texts()}
    for path in EVAL_SETS:
        rows = [line.split("\t")[0] for line in path.read_text().splitlines()[1:]]
        assert not plain & set(rows), path.name


def run_eval(path: Path, *extra: str):
    result = subprocess.run([sys.executable, "-m", "hotline.cli", "eval", "nlu", str(path), "--json", *extra],
                            cwd=ROOT, env=rasa_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_heldout_accuracy(trained_settings):
    report = run_eval(HELDOUT)
    rows = len(HELDOUT.read_text().strip().splitlines()) - 1
    assert report["n"] == rows == len(report["predictions"])
    assert set(report["predictions"][0]) >= {"text", "intent", "predicted", "confidence"}
    assert report["accuracy"] >= HELDOUT_ACCURACY_FLOOR, report["confusions"]
    assert report["macro_f1"] >= HELDOUT_MACRO_F1_FLOOR


def test_test_set_accuracy(trained_settings):
    report = run_eval(ROOT / "data" / "eval" / "nlu_test.tsv")
    assert report["n"] >= 300
    assert report["accuracy"] >= TEST_ACCURACY_FLOOR, report["confusions"]


def test_simulated_spoken_dev_accuracy(trained_settings):
    typed = run_eval(ROOT / "data" / "eval" / "nlu_dev.tsv")
    spoken = run_eval(ROOT / "data" / "eval" / "nlu_dev.tsv", "--spoken", "1")
    changed = sum(a["text"] != b["text"] for a, b in zip(typed["predictions"], spoken["predictions"]))
    assert changed >= 0.4 * spoken["n"]  # the error model really garbles the questions
    assert spoken["accuracy"] >= SPOKEN_DEV_ACCURACY_FLOOR, spoken["confusions"]


def test_what_used_to_be_misunderstood(trained_settings, tmp_path):
    """Failures found by the independent evaluation (issue 7): a clean transcript taken for
    out_of_scope, a locked second-hand phone taken for a scam call, punctuation and invisible text
    taken for "yes", random letters taken for a scam call."""
    path = tmp_path / "cases.tsv"
    path.write_text("text\tintent\n为什么我的相机会闪退\tcrash\n是二手的，屏幕上说已锁定至所有者\tactivation\n"
                    "。\tout_of_scope\n...\tout_of_scope\n\u200b\tout_of_scope\nqwxzvb\tout_of_scope\n"
                    "击火不了\tactivation\n", encoding="utf-8")
    report = run_eval(path)
    wrong = [(p["text"], p["predicted"]) for p in report["predictions"] if p["predicted"] != p["intent"]]
    assert not wrong


def test_eval_reports_unknown_labels_without_crashing(trained_settings, tmp_path):
    path = tmp_path / "mixed.tsv"
    path.write_text("text\tintent\n手机激活不了\tactivation\n帮我订机票\tbook_flight\n\n", encoding="utf-8")
    report = run_eval(path)
    assert report["unknown_labels"] == {"book_flight": 1}
    assert report["n"] == 1 and len(report["predictions"]) == 2
    assert report["predictions"][0]["predicted"] == "activation"


def test_eval_rejects_a_file_without_the_header(trained_settings, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("手机激活不了\tactivation\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "hotline.cli", "eval", "nlu", str(path)], cwd=ROOT,
                            env=rasa_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "header" in result.stderr


def test_cross_validation(tmp_path):
    out = tmp_path / "cv"
    result = subprocess.run([sys.executable, "-m", "rasa", "test", "nlu", "--cross-validation", "--folds", "3",
                             "--config", str(ROOT / "bot/config.yml"), "--nlu", str(ROOT / "data/nlu"),
                             "--out", str(out)], cwd=tmp_path, env=rasa_env(), capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((out / "intent_report.json").read_text())
    print(f"3-fold CV accuracy {report['accuracy']:.3f}, macro-F1 {report['macro avg']['f1-score']:.3f}")
    assert report["accuracy"] >= CV_ACCURACY_FLOOR
