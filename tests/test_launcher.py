"""Settings → Rasa endpoints, and the Rasa stores on PostgreSQL and Redis with Rasa's own classes."""
from __future__ import annotations

import asyncio
import uuid

import yaml

from hotline.launcher import endpoints_config, lock_store_config, tracker_store_config, write_endpoints
from hotline.core.settings import Settings
from tests.conftest import POSTGRES_URL, REDIS_URL, require_service


def test_default_endpoints_use_sqlite_and_loopback(tmp_path):
    settings = Settings(var_dir=tmp_path, action_port=5999)
    config = yaml.safe_load(write_endpoints(settings).read_text())
    assert config["action_endpoint"]["url"] == "http://127.0.0.1:5999/webhook"
    assert config["tracker_store"] == {"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "tracker.db")}
    assert "lock_store" not in config


def test_postgres_and_redis_urls():
    assert tracker_store_config("postgresql://bot:secret@db.internal:5433/rasa") == {
        "type": "SQL", "dialect": "postgresql", "db": "rasa", "url": "db.internal", "port": 5433,
        "username": "bot", "password": "secret"}
    assert lock_store_config("redis://127.0.0.1:6380/2")["port"] == 6380
    managed = lock_store_config("rediss://bot:s3cret@cache.internal:6380/1")  # TLS and an ACL user
    assert (managed["use_ssl"], managed["username"], managed["password"], managed["db"]) == (True, "bot", "s3cret", 1)
    assert lock_store_config("redis://127.0.0.1:6379/0")["use_ssl"] is False
    settings = Settings(lock_store_url="redis://127.0.0.1:6379/1")
    assert endpoints_config(settings)["lock_store"]["db"] == 1


def test_rasa_sql_tracker_store_on_postgresql():
    require_service("127.0.0.1", 5432, "PostgreSQL")
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    config = tracker_store_config(POSTGRES_URL)
    store = SQLTrackerStore(Domain.empty(), dialect=config["dialect"], host=config.get("url"),
                            port=config.get("port"), db=config["db"], username=config.get("username"))
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    tracker = DialogueStateTracker(sender, [])
    tracker.update(UserUttered("手机激活不了", {"name": "activation", "confidence": 0.9}))
    asyncio.run(store.save(tracker))
    loaded = asyncio.run(store.retrieve(sender))
    assert loaded.latest_message.text == "手机激活不了"


def test_the_lock_store_rasa_builds_from_endpoints_issues_each_ticket_once_across_replicas():
    """Rasa builds the store from the generated endpoints.yml; several replicas (one store and one
    connection each) issuing tickets for one conversation at once never get the same number."""
    require_service("127.0.0.1", 6379, "Redis")
    import threading

    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import EndpointConfig

    from hotline.plugins.lock_store import AtomicRedisLockStore

    config = dict(lock_store_config(REDIS_URL), key_prefix="hotlinetest")
    stores = [LockStore.create(EndpointConfig.from_dict(config)) for _ in range(6)]
    assert all(isinstance(store, AtomicRedisLockStore) for store in stores)
    conversation = f"lock-{uuid.uuid4().hex[:8]}"
    tickets, start = [], threading.Barrier(len(stores))

    def take(store) -> None:
        start.wait()
        for _ in range(15):
            tickets.append(store.issue_ticket(conversation))

    threads = [threading.Thread(target=take, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(tickets) == list(range(len(stores) * 15))  # every number once
    for number in tickets:
        stores[number % len(stores)].cleanup(conversation, number)
    assert stores[0].get_lock(conversation) is None  # the last ticket given back removes the lock

    async def use_lock():
        async with stores[0].lock(conversation, wait_time_in_seconds=0.01):
            assert stores[1].get_lock(conversation) is not None  # seen by another replica
        return stores[1].get_lock(conversation)

    assert asyncio.run(use_lock()) is None  # released and deleted after use


def test_running_stack_keeps_conversations_in_postgresql_and_locks_them_in_redis(trained_settings, tmp_path, postgres_database):
    """The whole stack on the machine's PostgreSQL (records and tracker store) and Redis (lock store),
    configured only through settings: the generated endpoints.yml is what Rasa reads."""
    require_service("127.0.0.1", 6379, "Redis")
    import threading

    import redis
    from sqlalchemy import create_engine, text

    from actions.records.client import SqlRecordsClient
    from actions.records.seed import seed
    from hotline.launcher import Stack
    from tests.conftest import Conversation, stack_settings

    url = postgres_database
    commands = []

    def watch_redis():
        with redis.Redis.from_url(REDIS_URL).monitor() as monitor:
            for command in monitor.listen():
                commands.append(command["command"])

    threading.Thread(target=watch_redis, daemon=True).start()
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    settings = stack_settings(trained_settings, tmp_path, database_url=url, tracker_store_url=url,
                              lock_store_url=REDIS_URL)
    seed(SqlRecordsClient(url))
    with Stack(settings, gateway=False):
        talk = Conversation(settings, sender)
        talk.reply("帮我查一下保修")
        assert "iPhone 15 Pro" in talk.reply("C39XK1ABHG7F")
    engine = create_engine(url)
    with engine.connect() as connection:
        events = connection.execute(text("SELECT COUNT(*) FROM events WHERE sender_id = :s"), {"s": sender}).scalar()
    engine.dispose()
    assert events > 4
    assert any(sender in c and "hotline" in c for c in commands)  # each turn took the conversation's lock


# --- hotline serve: one role alone, as in a container ---------------------------------------------

def test_serve_refuses_to_start_a_role_without_the_shared_secrets(tmp_path):
    import subprocess
    import sys

    from hotline.core.settings import PROJECT_ROOT

    env = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    for role, missing in (("rasa", "RASA_TOKEN, ACTION_TOKEN"), ("actions", "ACTION_TOKEN"), ("gateway", "RASA_TOKEN, TRAINER_TOKEN")):
        result = subprocess.run([sys.executable, "-m", "hotline.cli", "serve", role], env=env, cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode != 0 and f"set {missing} in the environment" in result.stderr, (role, result.stderr)
        assert not list(tmp_path.glob("*_token"))  # no replica invents a token of its own


def test_a_served_role_listens_on_host_and_reaches_the_others_where_told(tmp_path):
    from hotline.serve import serve_command

    settings = Settings(var_dir=tmp_path, host="0.0.0.0", rasa_token="r", action_token="a",
                        action_server_url="http://actions:5055", rasa_url="http://rasa:5005")
    rasa, rasa_env = serve_command(settings, "rasa")
    assert rasa[rasa.index("--interface") + 1] == "0.0.0.0"
    endpoints = yaml.safe_load((tmp_path / "endpoints.yml").read_text())
    assert endpoints["action_endpoint"]["url"] == "http://actions:5055/webhook"
    assert rasa_env["HOTLINE_ACTION_TOKEN"] == "a" and rasa_env["OMP_NUM_THREADS"] == "1"
    actions, actions_env = serve_command(settings, "action_server")
    assert actions[actions.index("--host") + 1] == "0.0.0.0" and "RASA_TOKEN" not in actions_env
    _, gateway_env = serve_command(settings, "gateway")
    assert gateway_env["RASA_URL"] == "http://rasa:5005" and gateway_env["RASA_TOKEN"] == "r"
    assert "HOTLINE_ACTION_TOKEN" not in gateway_env and "ACTION_TOKEN" not in gateway_env
    # on one machine nothing changes: loopback on the configured ports
    local = Settings(var_dir=tmp_path, rasa_port=6001, action_port=6002)
    assert (local.rasa_url, local.action_url) == ("http://127.0.0.1:6001", "http://127.0.0.1:6002")
