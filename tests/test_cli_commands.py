"""The `hotline` command as an operator types it, in a subprocess: `train` skips an up-to-date model
without touching it and trains when the data changed, and `eval nlu` with --cross-validation,
--noise and --compare prints the numbers it documents. Every run works on temporary copies: the
shared model in models/ is only read."""
from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hotline.trainer.training import rasa_env
from tests.conftest import ROOT

HOTLINE = ROOT / ".venv" / "bin" / "hotline"
HEADER = re.compile(r"^n=(\d+)  accuracy=(\d\.\d{3})  macro-F1=(\d\.\d{3})  fallback rate=(\d\.\d{3})$", re.M)
ROW = re.compile(r"^(\w+)\s+(\d\.\d{3})\s+(\d\.\d{3})\s+(\d\.\d{3})\s+(\d+)$", re.M)


def hotline(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    command = [str(HOTLINE)] if HOTLINE.exists() else ["python", "-m", "hotline.cli"]
    return subprocess.run([*command, *args], cwd=ROOT, env=dict(rasa_env(), **env), capture_output=True,
                          text=True, timeout=timeout)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def up_to_date_model(trained_settings) -> Path:
    """The shared model as it is now (the session fixture trains it if the data changed)."""
    return trained_settings.model_path


@pytest.fixture
def model_copy(up_to_date_model, tmp_path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    for path in up_to_date_model.parent.glob("hotline.*"):
        if path.is_file():
            shutil.copy2(path, models / path.name)
    return models


def parse_table(output: str):
    header = HEADER.search(output)
    assert header, output
    n, accuracy, macro_f1, fallback = int(header[1]), float(header[2]), float(header[3]), float(header[4])
    rows = {m[1]: (float(m[2]), float(m[3]), float(m[4]), int(m[5])) for m in ROW.finditer(output)}
    assert rows, output
    assert sum(support for *_, support in rows.values()) == n  # every scored row is in the table
    assert abs(sum(f1 for _, _, f1, _ in rows.values()) / len(rows) - macro_f1) < 0.002
    assert all(0 <= v <= 1 for p, r, f, _ in rows.values() for v in (p, r, f))
    assert 0 <= accuracy <= 1 and 0 <= fallback <= 1
    return n, accuracy, macro_f1, rows


# --- hotline train ------------------------------------------------------------------------------

def test_train_skips_an_up_to_date_model_and_leaves_it_alone(model_copy, tmp_path):
    model = model_copy / "hotline.tar.gz"
    before, mtime = sha256(model), model.stat().st_mtime_ns
    fingerprint = (model_copy / "hotline.fingerprint.json").read_bytes()
    result = hotline("train", MODELS_DIR=str(model_copy), VAR_DIR=str(tmp_path / "var"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "model is up to date" in result.stdout and "training" not in result.stdout, result.stdout
    assert sha256(model) == before and model.stat().st_mtime_ns == mtime
    assert (model_copy / "hotline.fingerprint.json").read_bytes() == fingerprint
    assert not (tmp_path / "var" / "logs" / "train.log").exists()


@pytest.fixture(scope="module")
def small_tsv(tmp_path_factory) -> Path:
    """Three rows for each of five intents from the dev set."""
    rows = list(csv.DictReader((ROOT / "data" / "eval" / "nlu_dev.tsv").open(encoding="utf-8"), delimiter="\t"))
    picked, seen = [], {}
    for row in rows:
        if seen.get(row["intent"], 0) < 3 and (row["intent"] in seen or len(seen) < 5):
            seen[row["intent"]] = seen.get(row["intent"], 0) + 1
            picked.append(row)
    path = tmp_path_factory.mktemp("eval") / "small.tsv"
    path.write_text("text\tintent\n" + "".join(f"{r['text']}\t{r['intent']}\n" for r in picked), encoding="utf-8")
    assert len(picked) == 15
    return path


def test_eval_nlu_with_noise_and_compare(up_to_date_model, small_tsv, tmp_path):
    """One run: the file through recogniser-like noise, compared with a hand-made earlier report
    whose numbers are known, so the printed deltas can be checked exactly."""
    old = tmp_path / "old"
    old.mkdir()
    intents = sorted({line.split("\t")[1] for line in small_tsv.read_text(encoding="utf-8").splitlines()[1:]})
    (old / "report.json").write_text(json.dumps({
        "accuracy": 0.5, "macro_f1": 0.25, "n": 15,
        "per_intent": {intent: {"precision": 0.5, "recall": 0.5, "f1": 0.25, "support": 3} for intent in intents}}))
    report = tmp_path / "new"
    result = hotline("eval", "nlu", str(small_tsv), "--noise", "3", "--compare", str(old), "--report", str(report),
                     timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    n, accuracy, macro_f1, rows = parse_table(result.stdout)
    assert n == 15 and sorted(rows) == intents
    compared = re.search(rf"^compared with {re.escape(str(old))}: accuracy ([+-]\d\.\d{{3}}), "
                         rf"macro-F1 ([+-]\d\.\d{{3}})$", result.stdout, re.M)
    assert compared, result.stdout
    assert float(compared[1]) == pytest.approx(accuracy - 0.5, abs=0.0011)
    assert float(compared[2]) == pytest.approx(macro_f1 - 0.25, abs=0.0011)
    for intent, (_, _, f1, _) in rows.items():  # a line per intent whose F1 moved
        if abs(f1 - 0.25) > 0.0005:
            assert re.search(rf"^  {intent}\s+F1 0\.250 → {f1:.3f} \([+-]\d\.\d{{3}}\)$", result.stdout, re.M), intent
    saved = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert saved["accuracy"] == pytest.approx(accuracy, abs=0.0006) and saved["compared"]["per_intent"]
    assert (report / "summary.md").exists() and (report / "confusion_matrix.png").stat().st_size > 0
    # The noise was applied: some texts that were scored are not the ones in the file.
    originals = {line.split("\t")[0] for line in small_tsv.read_text(encoding="utf-8").splitlines()[1:]}
    scored = [p["text"] for p in saved["predictions"]]
    assert len(scored) == 15 and any(text not in originals for text in scored)


def test_eval_nlu_cross_validation_on_a_small_training_set(tmp_path):
    """Two folds over a small copy of the training data (PROJECT_ROOT points at the copy)."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "bot", project / "bot")
    (project / "data" / "nlu").mkdir(parents=True)
    import yaml

    source = yaml.safe_load((ROOT / "data" / "nlu" / "chitchat.yml").read_text(encoding="utf-8"))
    blocks = [b for b in source["nlu"] if "intent" in b][:3]
    lines = ["version: \"3.1\"", "nlu:"]
    for block in blocks:
        examples = [e[2:] for e in block["examples"].splitlines() if e.startswith("- ")][:6]
        lines += [f"- intent: {block['intent']}", "  examples: |"] + [f"    - {e}" for e in examples]
    (project / "data" / "nlu" / "small.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.monotonic()
    result = hotline("eval", "nlu", "--cross-validation", "--folds", "2", PROJECT_ROOT=str(project),
                     VAR_DIR=str(tmp_path / "var"), timeout=300)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    n, accuracy, macro_f1, rows = parse_table(result.stdout)
    assert sorted(rows) == sorted(b["intent"] for b in blocks)
    assert n == sum(min(6, len([e for e in b["examples"].splitlines() if e.startswith("- ")])) for b in blocks)
    print(f"2-fold CV on {n} examples: accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}, {seconds:.0f} s")


def test_eval_nlu_without_a_file_or_cross_validation_is_an_error():
    result = hotline("eval", "nlu", timeout=60)
    assert result.returncode == 2 and "give a TSV file or --cross-validation" in result.stderr
