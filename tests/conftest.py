"""Shared fixtures: a trained model, and the real Rasa + action servers on free loopback ports
with their own SQLite records and tracker databases."""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List

import pytest
import requests

from actions.records.client import SqlRecordsClient
from actions.records.seed import seed
from hotline.launcher import Stack
from hotline.core.settings import Settings
from hotline.trainer.training import changed_inputs, train
from voice_gateway.tts import english_test_voice  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parent.parent

# Schemathesis (tests/test_fuzz_api.py) patches Hypothesis once per process, on the first test of
# the session, so that failing examples print as nothing ("text=,"), a speed-up for its own large
# schemas. Let it patch now and undo that part: every Hypothesis test here shows the input that failed.
try:
    import schemathesis.generation.hypothesis.builder  # noqa: F401  (runs the one-time patch)
except ImportError:
    pass
else:
    import hypothesis.core
    from hypothesis.vendor import pretty

    hypothesis.core.RepresentationPrinter = pretty.RepresentationPrinter

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def require_service(host: str, port: int, name: str) -> None:
    """CI machines run PostgreSQL and Redis: there a missing service is a failure, not a skip."""
    if not reachable(host, port):
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not reachable on {host}:{port}")
        pytest.skip(f"{name} is not running on {host}:{port}")


@pytest.fixture(scope="session")
def trained_settings() -> Settings:
    settings = Settings()
    if changed_inputs(settings) is not None:
        train(settings)
    return settings


# A support site embedding the widget (tests/test_widget.py): http://localhost:PORT is allowed,
# the same page as http://127.0.0.1:PORT is another origin, which is not.
WIDGET_HOST_PORT = free_port()
ALLOWED_WIDGET_ORIGIN = f"http://localhost:{WIDGET_HOST_PORT}"


def stack_settings(trained: Settings, var_dir: Path, **overrides) -> Settings:
    values = dict(var_dir=var_dir, models_dir=trained.models_dir, rasa_port=free_port(), action_port=free_port(),
                  gateway_port=free_port(), audiosocket_port=free_port(), rasa_token="test-token",
                  allowed_origins=ALLOWED_WIDGET_ORIGIN, drain_notice_s=0.0,  # no balancer to tell
                  tts_engine="piper", tts_voice=english_test_voice(), audiosocket_read_timeout=2.0,
                  rasa_timeout_s=20.0)  # two cores shared by every test: no apology for a slow turn
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def stack(trained_settings: Settings, tmp_path_factory) -> Stack:
    settings = stack_settings(trained_settings, tmp_path_factory.mktemp("var"))
    seed(SqlRecordsClient(settings.resolved_database_url()))
    with Stack(settings) as running:
        yield running


class Conversation:
    def __init__(self, settings: Settings, sender: str, channel: str = "rest") -> None:
        self.settings, self.sender, self.channel = settings, sender, channel

    def say(self, text: str) -> List[Dict[str, object]]:
        response = requests.post(f"{self.settings.rasa_url}/webhooks/{self.channel}/webhook",
                                 json={"sender": self.sender, "message": text}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def reply(self, text: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(text) if m.get("text"))

    def tracker(self) -> Dict[str, object]:
        response = requests.get(f"{self.settings.rasa_url}/conversations/{self.sender}/tracker",
                                params={"token": self.settings.resolved_rasa_token()}, timeout=30)
        response.raise_for_status()
        return response.json()

    def last_intent(self) -> str:
        return self.tracker()["latest_message"]["intent"]["name"]


@pytest.fixture
def conversation(stack: Stack) -> Callable[[], Conversation]:
    return lambda channel="rest": Conversation(stack.settings, f"test-{uuid.uuid4().hex[:10]}", channel)


def show(request, lines) -> None:
    """Print on the terminal even though pytest captures output (as capsys.disabled() does)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


@contextmanager
def fresh_postgres_database(prefix: str = "hotline") -> Iterator[str]:
    """A new database on the machine's PostgreSQL (its URL), dropped afterwards with its sessions."""
    import sqlalchemy as sa

    require_service("127.0.0.1", 5432, "PostgreSQL")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield str(sa.engine.make_url(POSTGRES_URL).set(database=name))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url
