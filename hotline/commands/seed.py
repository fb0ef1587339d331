"""`hotline seed`: the records schema and the demo rows."""
from __future__ import annotations

from hotline.core.settings import get_settings


def cmd_seed(args) -> int:
    from actions.records.client import SqlRecordsClient
    from actions.records.seed import seed

    settings = get_settings()
    added = seed(SqlRecordsClient(settings.resolved_database_url()))
    print(f"{added} demo rows added to {settings.resolved_database_url()}")
    return 0


def register(sub) -> None:
    sub.add_parser("seed", help="create the records schema and demo rows").set_defaults(func=cmd_seed)
