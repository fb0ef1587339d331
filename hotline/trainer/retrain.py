"""Retraining from the trainer page: check the data, train a candidate next to the live model,
evaluate both on the evaluation set, and swap the candidate in (Rasa's PUT /model) only if it is
not worse than the live model by more than the tolerance."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Optional

import requests

from hotline.core.settings import Settings
from hotline.trainer.training import fingerprint_path, rasa_env


class RetrainJob:
    STEPS = ["checking data", "training", "evaluating", "swapping"]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = "idle"  # idle | running | deployed | rejected | failed
        self.step: Optional[str] = None
        self.message = ""
        self.started: Optional[float] = None
        self.finished: Optional[float] = None
        self.result: Dict[str, object] = {}
        self._lock = threading.Lock()

    def status(self) -> Dict[str, object]:
        progress = (self.STEPS.index(self.step) / len(self.STEPS)) if self.step in self.STEPS else 0.0
        if self.state in ("deployed", "rejected"):
            progress = 1.0
        return {"state": self.state, "step": self.step, "progress": round(progress, 2), "message": self.message,
                "started": self.started, "finished": self.finished, "result": self.result}

    def start(self) -> bool:
        with self._lock:
            if self.state == "running":
                return False
            self.state, self.step, self.message, self.result = "running", None, "", {}
            self.started, self.finished = time.time(), None
        threading.Thread(target=self._run, name="retrain", daemon=True).start()
        return True

    # --- the job -------------------------------------------------------------------------------
    def _hotline(self, *args: str, models_dir: Path) -> subprocess.CompletedProcess:
        env = dict(rasa_env(), MODELS_DIR=str(models_dir), PROJECT_ROOT=str(self.settings.project_root),
                   VAR_DIR=str(self.settings.var_dir))
        return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=self.settings.project_root,
                              env=env, capture_output=True, text=True, timeout=1800)

    def _run(self) -> None:
        s = self.settings
        try:
            self.step = "checking data"
            from hotline.trainer.nlu_data import NluData

            findings = NluData(s.project_root / "data" / "nlu", s.project_root / "bot" / "domain.yml").check()
            blocking = findings["shared"] + findings["unknown_intents"]
            if blocking:
                return self._end("rejected", f"fix the training data first: {json.dumps(blocking, ensure_ascii=False)[:500]}")

            self.step = "training"
            candidate_dir = s.var_dir / "candidate"
            shutil.rmtree(candidate_dir, ignore_errors=True)
            trained = self._hotline("train", "--force", models_dir=candidate_dir)
            if trained.returncode != 0:
                return self._end("failed", "training failed: " + trained.stderr[-500:])

            self.step = "evaluating"
            eval_file = s.project_root / "data" / "eval" / "nlu_heldout.tsv"
            stamp = time.strftime("%Y%m%d-%H%M%S")
            new_dir = s.var_dir / "reports" / stamp
            new = self._evaluate(eval_file, candidate_dir, new_dir)
            old = self._evaluate(eval_file, s.models_dir, s.var_dir / "reports" / f"{stamp}-live")
            self.result = {"candidate": {k: new[k] for k in ("accuracy", "macro_f1", "n")},
                           "live": {k: old[k] for k in ("accuracy", "macro_f1", "n")}, "report": stamp}
            if new["accuracy"] < old["accuracy"] - s.retrain_tolerance:
                return self._end("rejected", f"candidate accuracy {new['accuracy']:.3f} is below the live "
                                             f"model's {old['accuracy']:.3f}: not deployed")

            self.step = "swapping"
            # Deployed means Rasa answers with the candidate: it loads it first, and only then does
            # the candidate replace the model file (the next start uses it too).
            model = candidate_dir / s.model_path.name
            refused = self._load_into_rasa(model)
            if refused:
                return self._end("failed", f"not deployed: Rasa did not load the candidate ({refused}); "
                                           "the live model is unchanged")
            shutil.copy2(model, s.model_path)
            shutil.copy2(candidate_dir / fingerprint_path(s).name, fingerprint_path(s))
            latest = s.var_dir / "reports" / "latest"
            shutil.rmtree(latest, ignore_errors=True)
            shutil.copytree(new_dir, latest)
            self._end("deployed", f"deployed: accuracy {old['accuracy']:.3f} → {new['accuracy']:.3f}")
        except Exception as error:  # the page must show a failure, never hang in "running"
            self._end("failed", f"{type(error).__name__}: {error}")

    def _evaluate(self, eval_file: Path, models_dir: Path, report_dir: Path) -> Dict[str, object]:
        result = self._hotline("eval", "nlu", str(eval_file), "--json", "--report", str(report_dir), models_dir=models_dir)
        if result.returncode != 0:
            raise RuntimeError("evaluation failed: " + result.stderr[-500:])
        return json.loads(result.stdout)

    def _load_into_rasa(self, model: Path) -> Optional[str]:
        """None once Rasa serves `model`, else why not."""
        try:
            response = requests.put(f"{self.settings.rasa_url}/model", params={"token": self.settings.resolved_rasa_token()},
                                    json={"model_file": str(model)}, timeout=300)
        except requests.RequestException as error:
            return f"Rasa not reachable: {type(error).__name__}"
        return None if response.status_code == 204 else f"HTTP {response.status_code}: {response.text[:200]}"

    def _end(self, state: str, message: str) -> None:
        self.state, self.message, self.finished = state, message, time.time()
