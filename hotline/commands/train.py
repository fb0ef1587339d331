"""`hotline train [--force]`: retrain only when the data, config or NLU code changed."""
from __future__ import annotations

from hotline.core.settings import get_settings


def cmd_train(args) -> int:
    from hotline.trainer.training import train

    train(get_settings(), force=args.force)
    return 0


def register(sub) -> None:
    train = sub.add_parser("train", help="retrain when data or config changed")
    train.add_argument("--force", action="store_true")
    train.set_defaults(func=cmd_train)
