"""`hotline setup`: train if needed, seed the records, assemble the Whisper model."""
from __future__ import annotations

from hotline.core.settings import get_settings


def cmd_setup(args) -> int:
    from actions.records.client import SqlRecordsClient
    from actions.records.seed import seed
    from hotline.trainer.training import train

    from voice_gateway.stt import ensure_whisper_model

    settings = get_settings()
    train(settings)
    added = seed(SqlRecordsClient(settings.resolved_database_url()))
    print(f"records ready ({added} demo rows added): {settings.resolved_database_url()}")
    if settings.stt_model_dir is None:
        print(f"speech model ready: {ensure_whisper_model(settings.whisper_dir)}")
    return 0


def register(sub) -> None:
    sub.add_parser("setup", help="train if needed and seed the records").set_defaults(func=cmd_setup)
