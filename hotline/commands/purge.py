"""`hotline purge --older-than AGE`: conversations silent for longer than that leave the tracker store."""
from __future__ import annotations

import sys

from hotline.core.settings import get_settings


def cmd_purge(args) -> int:
    import datetime as dt

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from hotline.purge import parse_age, purge_conversations

    url = get_settings().resolved_tracker_store_url()
    try:
        result = purge_conversations(url, parse_age(args.older_than), dry_run=args.dry_run)
    except (ValueError, SQLAlchemyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cutoff = dt.datetime.fromtimestamp(result.cutoff, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {result.conversations} conversation(s), {result.events} event(s), silent since before {cutoff}, "
          f"from {make_url(url).render_as_string(hide_password=True)}")
    return 0


def register(sub) -> None:
    purge = sub.add_parser("purge", help="delete conversations from the tracker store after a retention period")
    purge.add_argument("--older-than", required=True, metavar="AGE",
                       help="conversations whose last event is older than this: 30d, 12h, 90m, 2w")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    purge.set_defaults(func=cmd_purge)
