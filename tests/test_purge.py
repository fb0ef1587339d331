"""`hotline purge --older-than AGE` on real tracker stores: a SQLite file and a fresh PostgreSQL
database, both written by Rasa's own SQLTrackerStore so that the schema is Rasa's."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import pytest
import sqlalchemy as sa

from hotline import purge
from hotline.purge import parse_age, purge_conversations
from hotline.trainer.training import rasa_env
from tests.conftest import ROOT

DAY = 86400.0
NOW = time.time()
# sender → age in days of each user turn (each turn is a user message, an action and action_listen)
CONVERSATIONS: Dict[str, list] = {
    "old-a": [45, 44],           # silent for 44 days: removed by 30d
    "old-b": [31],               # 31 days: removed by 30d
    "long-running": [60, 1],     # began 60 days ago, spoke yesterday: kept (its last event counts)
    "fresh": [2 / 24],           # two hours ago: kept by 30d and by 12h
}


def rasa_store(**kwargs):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    return SQLTrackerStore(Domain.empty(), **kwargs)


def write_conversations(store, conversations=CONVERSATIONS) -> Dict[str, int]:
    """Saves the conversations with Rasa's store; returns each one's number of event rows."""
    from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    counts = {}
    for sender, ages in conversations.items():
        tracker = DialogueStateTracker(sender, [])
        start = NOW - ages[0] * DAY - 10
        tracker.update(ActionExecuted("action_session_start", timestamp=start))
        tracker.update(SessionStarted(timestamp=start + 1))
        for age in ages:
            at = NOW - age * DAY
            tracker.update(UserUttered(f"this is {sender} speaking", {"name": "inform", "confidence": 0.9},
                                       timestamp=at))
            tracker.update(ActionExecuted("utter_ok", timestamp=at + 1))
            tracker.update(ActionExecuted("action_listen", timestamp=at + 2))
        asyncio.run(store.save(tracker))
        counts[sender] = len(tracker.events)
    return counts


def stored(url: str) -> Dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id")).fetchall()
    engine.dispose()
    return dict(rows)


def hotline_purge(url: str, var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(rasa_env(), TRACKER_STORE_URL=url, VAR_DIR=str(var_dir))
    return subprocess.run([sys.executable, "-m", "hotline.cli", "purge", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value,seconds", [("30d", 30 * DAY), ("12h", 12 * 3600), ("7d", 7 * DAY), ("90m", 5400),
                                           ("2w", 14 * DAY), ("45s", 45), ("1.5h", 5400), (" 30D ", 30 * DAY)])
def test_parse_age(value, seconds):
    assert parse_age(value) == seconds


@pytest.mark.parametrize("value", ["30", "d", "0d", "-1d", "30 days", "1y", ""])
def test_parse_age_refuses(value):
    with pytest.raises(ValueError):
        parse_age(value)


def check_purge(url: str, var_dir: Path) -> None:
    """The same story on any database: dry run, purge by 30 days, purge by an hour."""
    counts = write_conversations(rasa_store_for(url))
    assert stored(url) == counts

    dry = hotline_purge(url, var_dir, "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    old_events = counts["old-a"] + counts["old-b"]
    assert f"would remove 2 conversation(s), {old_events} event(s)" in dry.stdout
    assert stored(url) == counts

    result = hotline_purge(url, var_dir, "--older-than", "30d")
    assert result.returncode == 0, result.stderr
    assert f"removed 2 conversation(s), {old_events} event(s)" in result.stdout
    assert stored(url) == {"long-running": counts["long-running"], "fresh": counts["fresh"]}

    # Rasa still reads what is left, whole (all sessions), and finds nothing of the rest.
    store = rasa_store_for(url)
    assert asyncio.run(store.retrieve("old-a")) is None
    kept = asyncio.run(store.retrieve_full_tracker("long-running"))
    assert len(kept.events) == counts["long-running"]
    assert sorted(asyncio.run(store.keys())) == ["fresh", "long-running"]
    store.engine.dispose()

    again = hotline_purge(url, var_dir, "--older-than", "30d")
    assert "removed 0 conversation(s), 0 event(s)" in again.stdout

    last = hotline_purge(url, var_dir, "--older-than", "12h")
    assert f"removed 1 conversation(s), {counts['long-running']} event(s)" in last.stdout
    assert stored(url) == {"fresh": counts["fresh"]}


def rasa_store_for(url: str):
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return rasa_store(dialect="sqlite", db=parsed.database)
    return rasa_store(dialect=parsed.get_backend_name(), host=parsed.host, port=parsed.port, db=parsed.database,
                      username=parsed.username, password=parsed.password)


def test_purge_sqlite(tmp_path):
    db = tmp_path / "tracker.db"
    check_purge(f"sqlite:///{db}", tmp_path)
    # What was deleted is not left behind in the file's free pages (secure_delete) nor in its log.
    for path in tmp_path.glob("tracker.db*"):
        data = path.read_bytes()
        assert b"fresh speaking" in data or path != db
        assert b"old-a speaking" not in data and b"old-b speaking" not in data and b"long-running speaking" not in data


def test_purge_postgresql(postgres_database, tmp_path):
    check_purge(postgres_database, tmp_path)


@pytest.mark.parametrize("returning", [True, False], ids=["delete-returning", "count-then-delete"])
def test_purge_keeps_a_conversation_that_comes_back_during_the_purge(tmp_path, monkeypatch, returning):
    """Between listing the stale conversations and deleting them, a caller of one of them speaks
    again: that conversation is kept whole. (Both ways of counting: DELETE … RETURNING, and the
    count before the delete for SQLite older than 3.35.)"""
    monkeypatch.setattr(purge, "_returning", lambda engine: returning)
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    counts = write_conversations(rasa_store_for(url))
    make_engine = purge.tracker_engine

    def engine_with_a_returning_caller(url_):
        engine = make_engine(url_)

        @sa.event.listens_for(engine, "begin")  # the purge's delete transaction begins
        def caller_returns(connection):
            writer = sa.create_engine(url)
            with writer.begin() as other:
                other.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) "
                                      "VALUES ('old-b', 'user', :now, '{}')"), {"now": time.time()})
            writer.dispose()

        return engine

    monkeypatch.setattr(purge, "tracker_engine", engine_with_a_returning_caller)
    result = purge_conversations(url, 30 * DAY)
    assert (result.conversations, result.events) == (1, counts["old-a"])
    assert stored(url)["old-b"] == counts["old-b"] + 1


def test_purge_without_a_tracker_store_creates_nothing(tmp_path):
    missing = tmp_path / "never" / "tracker.db"
    result = hotline_purge(f"sqlite:///{missing}", tmp_path, "--older-than", "30d")
    assert result.returncode == 0 and "removed 0 conversation(s), 0 event(s)" in result.stdout
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()  # a database without Rasa's table
    assert purge_conversations(f"sqlite:///{empty}", DAY).events == 0


def test_purge_refuses_a_bad_age(tmp_path):
    result = hotline_purge(f"sqlite:///{tmp_path / 'tracker.db'}", tmp_path, "--older-than", "soon")
    assert result.returncode == 2 and "not an age" in result.stderr


def test_purge_hides_the_database_password(tmp_path):
    result = hotline_purge("postgresql://hotline:s3cret@127.0.0.1:1/none", tmp_path, "--older-than", "30d")
    assert "s3cret" not in result.stdout + result.stderr
    assert result.returncode == 2 and re.search(r"error: .*", result.stderr)
