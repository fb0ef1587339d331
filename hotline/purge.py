"""Retention: `hotline purge --older-than 30d` removes conversations whose last event is older than
that from Rasa's SQL tracker store (its `events` table: one row per event, with `sender_id` and a
Unix `timestamp`). SQLite by default, PostgreSQL (or any SQLAlchemy database) by URL."""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
BATCH = 500  # conversations per transaction: SQLite's writer lock is held briefly, Rasa keeps writing


def parse_age(value: str) -> float:
    """`30d`, `12h`, `7d`, `90m`, `2w`, `45s` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value or "", re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not an age: {value!r} (use e.g. 30d, 12h, 90m, 2w)")
    return float(match.group(1)) * UNITS[match.group(2).lower()]


@dataclass
class PurgeResult:
    conversations: int = 0
    events: int = 0
    cutoff: float = 0.0  # Unix time: conversations silent since before this are removed


def tracker_engine(url: str) -> Optional[Engine]:
    """An engine on the tracker store, or None for a SQLite file that does not exist (nothing was
    ever stored: opening it would create an empty database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or not os.path.exists(parsed.database):
            return None
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")  # Rasa may be writing: wait for its lock
            cursor.execute("PRAGMA secure_delete=ON")  # deleted messages are overwritten, not left in free pages
            cursor.close()

        return engine
    kwargs = {}
    schema = os.environ.get("POSTGRESQL_SCHEMA")  # Rasa's own switch for a non-default schema
    if schema and parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    return create_engine(url, **kwargs)


STALE = "SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id HAVING MAX(timestamp) < :cutoff"


def _returning(engine: Engine) -> bool:
    if engine.dialect.name == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 35)
    return engine.dialect.name == "postgresql"


def purge_conversations(url: str, older_than_s: float, dry_run: bool = False,
                        now: Optional[float] = None) -> PurgeResult:
    """Delete every event of each conversation whose newest event is older than `older_than_s`.
    A conversation that gets a new event while the purge runs is kept: the delete itself checks
    that none of the conversation's events is newer than the cutoff."""
    result = PurgeResult(cutoff=(time.time() if now is None else now) - older_than_s)
    engine = tracker_engine(url)
    if engine is None:
        return result
    try:
        if not inspect(engine).has_table("events"):
            return result
        with engine.connect() as connection:
            stale = connection.execute(text(STALE), {"cutoff": result.cutoff}).fetchall()
        if dry_run:
            result.conversations, result.events = len(stale), sum(count for _, count in stale)
            return result
        returning = _returning(engine)
        for first in range(0, len(stale), BATCH):
            params = {f"s{i}": sender for i, (sender, _) in enumerate(stale[first:first + BATCH])}
            senders = ", ".join(f":{key}" for key in params)
            delete = (f"DELETE FROM events WHERE sender_id IN ({senders}) AND sender_id NOT IN "
                      f"(SELECT sender_id FROM events WHERE sender_id IN ({senders}) AND timestamp >= :cutoff)")
            with engine.begin() as connection:
                if returning:
                    removed = [row[0] for row in connection.execute(text(delete + " RETURNING sender_id"),
                                                                    {**params, "cutoff": result.cutoff})]
                    result.conversations += len(set(removed))
                    result.events += len(removed)
                else:
                    kept = connection.execute(text(
                        f"SELECT COUNT(DISTINCT sender_id) FROM events WHERE sender_id IN ({senders}) "
                        "AND timestamp >= :cutoff"), {**params, "cutoff": result.cutoff}).scalar()
                    result.events += connection.execute(text(delete), {**params, "cutoff": result.cutoff}).rowcount
                    result.conversations += len(params) - kept
        if engine.dialect.name == "sqlite" and result.events:
            with engine.connect() as connection:
                # Fold the write-ahead log (which still holds the old pages) back into the database.
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return result
    finally:
        engine.dispose()
