"""Effect of the speech-robust augmentation (not a test): prints numbers.

Trains the shipped config with and without augmentation into temporary folders and evaluates each on
the held-out set (written separately from the training data), clean and passed through recogniser
noise with a seed different from training's. (Recordings through STT + NLU: `hotline eval spoken`.)

Usage: .venv/bin/python bench/nlu_augmentation.py [--noise-seeds 7,8,9]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hotline.trainer.evaluation import evaluate_nlu, load_agent  # noqa: E402
from hotline.core.settings import Settings  # noqa: E402
from hotline.trainer.training import train  # noqa: E402

HELDOUT = ROOT / "data" / "eval" / "nlu_heldout.tsv"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--noise-seeds", default="7,8,9")
    args = parser.parse_args()
    seeds = [int(s) for s in args.noise_seeds.split(",")]
    print(f"held-out set: {HELDOUT.name}; noise seeds {seeds} (training augmentation uses seed 13)")
    print(f"{'model':<22}{'clean acc':>10}{'clean F1':>10}{'noisy acc':>11}{'noisy F1':>10}")
    for augment in (False, True):
        with tempfile.TemporaryDirectory() as models:
            settings = Settings(models_dir=Path(models), nlu_augment=augment, var_dir=Path(models) / "var")
            train(settings, force=True, quiet=True)
            agent = load_agent(settings)
            clean = evaluate_nlu(settings, HELDOUT, agent=agent)
            noisy = [evaluate_nlu(settings, HELDOUT, agent=agent, noise_seed=seed) for seed in seeds]
            print(f"{'with augmentation' if augment else 'without augmentation':<22}"
                  f"{clean['accuracy']:>10.3f}{clean['macro_f1']:>10.3f}"
                  f"{statistics.mean(r['accuracy'] for r in noisy):>11.3f}"
                  f"{statistics.mean(r['macro_f1'] for r in noisy):>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
