"""NLU quality: a held-out set written separately from the training data, and cross-validation.

Floors: 5-fold cross-validation on data/nlu measured 0.80 accuracy (README). The 3-fold run here
trains on a third less data, so its floor sits below that; the held-out floor guards the shipped model.
A drop under either means new data or config made the classifier worse, not noise."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from hotline.training import rasa_env

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "data" / "eval" / "nlu_heldout.tsv"
HELDOUT_ACCURACY_FLOOR = 0.88
HELDOUT_MACRO_F1_FLOOR = 0.85
CV_ACCURACY_FLOOR = 0.72


def training_texts():
    texts = set()
    for path in (ROOT / "data" / "nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            if "intent" in item:
                texts |= {line[2:].strip() for line in item["examples"].splitlines() if line.strip()}
    return texts


def test_heldout_set_is_not_in_the_training_data():
    import re

    plain = {re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", t) for t in training_texts()}
    rows = [line.split("\t")[0] for line in HELDOUT.read_text().splitlines()[1:]]
    assert not plain & set(rows)


def run_eval(path: Path):
    result = subprocess.run([sys.executable, "-m", "hotline.cli", "eval", "nlu", str(path), "--json"],
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


def test_no_response_asks_for_secrets():
    """The source is explicit: never ask for passwords, verification codes or bank details.
    Any response that mentions them must be telling the caller NOT to share them."""
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    texts = [v["text"] for variants in domain["responses"].values() for v in variants]
    texts += [line for path in (ROOT / "actions").glob("*.py") for line in path.read_text().splitlines()
              if "utter_message" in line or "text=" in line]
    for text in texts:
        if any(secret in text for secret in ("密码", "验证码", "银行卡")):
            assert any(neg in text for neg in ("不会", "不要", "请勿", "绝不", "不能", "只能")), text
