"""Two replicas of every server behind HAProxy on this machine, sharing the real PostgreSQL (records
and Rasa's tracker store) and Redis (lock store, rate limits): `hotline cluster` as a fixture.

A conversation keeps its form across replicas, a Rasa replica killed mid-form costs no turn,
concurrent turns of one conversation are serialised by the Redis lock, a case made on one replica
is followed up on another, a button offered by one gateway is obeyed by the other; and a gateway
told to stop (SIGTERM) drains its live call before it exits."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import uuid
from typing import Dict, List

import pytest
import requests
import websockets

from actions.records.client import SqlRecordsClient
from actions.records.seed import seed
from hotline.cluster import Cluster, haproxy_config, haproxy_stats, shared_store_problems
from hotline.launcher import role_env
from hotline.core.settings import Settings
from tests.conftest import REDIS_URL, english_test_voice, free_port, fresh_postgres_database, require_service, stack_settings
from tests.test_conversations import UNCLEAR
from tests.test_phone_audio import PlayingTwilioCaller


@pytest.fixture(scope="module")
def cluster(trained_settings, tmp_path_factory):
    require_service("127.0.0.1", 6379, "Redis")
    with fresh_postgres_database("hotline_cluster") as url:
        # Text-only gateways: these tests are about shared state; speech has its own tests.
        settings = stack_settings(trained_settings, tmp_path_factory.mktemp("cluster"), database_url=url,
                                  tracker_store_url=url, lock_store_url=REDIS_URL, load_speech=False,
                                  rate_limit_chat="1000/minute")
        seed(SqlRecordsClient(url))
        with Cluster(settings, replicas=2) as running:
            yield running


def rasa_turn(base_url: str, token: str, sender: str, message: str) -> List[Dict[str, object]]:
    response = requests.post(f"{base_url}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                             params={"token": token}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def said(messages) -> str:
    return "\n".join(m.get("text", "") for m in messages if m.get("text"))


def tracker_events(cluster, sender: str) -> List[Dict[str, object]]:
    response = requests.get(f"{cluster.settings.rasa_url}/conversations/{sender}/tracker",
                            params={"token": cluster.settings.resolved_rasa_token()}, timeout=30)
    response.raise_for_status()
    return response.json()["events"]


# --- configuration -----------------------------------------------------------------------------

def test_a_cluster_refuses_stores_that_replicas_cannot_share(tmp_path):
    problems = shared_store_problems(Settings(var_dir=tmp_path))
    assert [p.split()[0] for p in problems] == ["DATABASE_URL", "TRACKER_STORE_URL", "LOCK_STORE_URL"]
    with pytest.raises(SystemExit, match="shared stores"):
        Cluster(Settings(var_dir=tmp_path))


def test_the_haproxy_configuration_is_valid_for_haproxy_itself(tmp_path):
    replicas = {role: [Settings(rasa_port=free_port(), action_port=free_port(), gateway_port=free_port(),
                                audiosocket_port=free_port()) for _ in range(2)]
                for role in ("action_server", "rasa", "gateway")}
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(Settings(var_dir=tmp_path), replicas) + "\n")
    check = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert config.read_text().count("server rasa-") == 2 and "retry-on conn-failure empty-response" in config.read_text()


# --- shared conversation state -------------------------------------------------------------------

def test_a_form_goes_on_when_its_turns_alternate_between_rasa_replicas(cluster):
    first, second = cluster.replica_urls("rasa")
    token, sender = cluster.settings.resolved_rasa_token(), f"alt-{uuid.uuid4().hex[:8]}"
    assert "序列号" in said(rasa_turn(first, token, sender, "帮我查一下保修"))
    assert "iPhone 15 Pro" in said(rasa_turn(second, token, sender, "C39XK1ABHG7F"))  # the form's slot, asked on the first
    senders = {e.get("sender_id") for e in tracker_events(cluster, sender)} - {None}
    assert senders <= {sender}


def test_chat_through_either_gateway_is_one_conversation_and_a_button_works_on_the_other(cluster):
    gateway_one, gateway_two = cluster.replica_urls("gateway")
    session = f"gw-{uuid.uuid4().hex[:8]}"
    # a vague question: the bot is unsure and offers its best guesses as buttons
    offered = requests.post(f"{gateway_one}/v1/chat", json={"text": UNCLEAR, "session_id": session}, timeout=60).json()
    buttons = offered["buttons"]
    assert buttons, offered
    pressed = requests.post(f"{gateway_two}/v1/chat", json={"text": buttons[0]["payload"], "session_id": session},
                            timeout=60).json()
    assert pressed["intent"] == buttons[0]["payload"].lstrip("/") and pressed["confidence"] == 1.0, pressed
    # the same payload typed again, now that nothing offers it, is read as words
    again = requests.post(f"{gateway_one}/v1/chat", json={"text": buttons[0]["payload"], "session_id": session},
                          timeout=60).json()
    assert again["confidence"] != 1.0


def test_a_case_made_on_one_replica_is_followed_up_on_the_other(cluster):
    first, second = cluster.replica_urls("rasa")
    token, sender = cluster.settings.resolved_rasa_token(), f"case-{uuid.uuid4().hex[:8]}"
    rasa_turn(first, token, sender, "电池不耐用")
    messages = rasa_turn(first, token, sender, "转人工")
    case_number = next(m["custom"]["case_number"] for m in messages if m.get("custom"))
    reply = said(rasa_turn(second, token, sender, f"案例编号{case_number}进展怎么样了"))
    assert "电池" in reply and "已受理" in reply


def test_concurrent_turns_of_one_conversation_are_serialised_by_the_redis_lock(cluster):
    import redis

    first, second = cluster.replica_urls("rasa")
    token, sender = cluster.settings.resolved_rasa_token(), f"lock-{uuid.uuid4().hex[:8]}"
    commands: List[str] = []
    watching = threading.Event()

    def watch_redis():
        with redis.Redis.from_url(REDIS_URL).monitor() as monitor:
            watching.set()
            for command in monitor.listen():
                if sender in command["command"]:
                    commands.append(command["command"])

    threading.Thread(target=watch_redis, daemon=True).start()
    watching.wait(10)
    replies: Dict[str, str] = {}
    start = threading.Barrier(2)

    def talk(url: str, message: str) -> None:
        start.wait()
        replies[message] = said(rasa_turn(url, token, sender, message))

    threads = [threading.Thread(target=talk, args=(first, "帮我查一下保修")),
               threading.Thread(target=talk, args=(second, "我的订单到哪了"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(replies.get(m) for m in ("帮我查一下保修", "我的订单到哪了")), replies
    # one turn after the other: user, the bot's actions, listen; then the next user message
    kinds = [e["event"] for e in tracker_events(cluster, sender) if e["event"] in ("user", "action")]
    users = [i for i, kind in enumerate(kinds) if kind == "user"]
    assert len(users) == 2 and users[1] > users[0] + 1, kinds
    events = tracker_events(cluster, sender)
    listen_before_second = [e for e in events[:[i for i, e in enumerate(events) if e["event"] == "user"][1]]
                            if e.get("name") == "action_listen"]
    assert len(listen_before_second) >= 2  # the first turn had ended (listening again) before the second began
    # the lock's changes were Redis transactions on this conversation's key (Rasa's own store
    # reads and writes without one, and lost a turn here)
    key = f"hotline:lock:{sender}"
    assert sum(c == f"WATCH {key}" for c in commands) >= 4, commands  # a ticket and its return, twice
    assert any(c.startswith(f"SET {key}") for c in commands)


# --- failover ------------------------------------------------------------------------------------

def test_killing_a_rasa_replica_mid_form_loses_no_turn(cluster):
    gateway = cluster.settings.gateway_url  # HAProxy: gateways, which reach Rasa through HAProxy
    sessions = [f"kill-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    for session in sessions:  # each conversation is inside the warranty form
        reply = requests.post(f"{gateway}/v1/chat", json={"text": "帮我查一下保修", "session_id": session}, timeout=60).json()
        assert any("序列号" in r for r in reply["replies"]), reply
    retried_before = sum(int(row.get("wretr") or 0) + int(row.get("wredis") or 0)
                         for row in haproxy_stats(cluster.settings) if row["pxname"] == "rasa")
    victim = cluster.processes["rasa-1"]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    # at once, before any health check has noticed: half of these go to the dead replica first
    answers = [requests.post(f"{gateway}/v1/chat", json={"text": "C39XK1ABHG7F", "session_id": session},
                             timeout=60).json() for session in sessions]
    for answer in answers:
        assert any("iPhone 15 Pro" in r for r in answer["replies"]), answer  # the form went on
    stats = haproxy_stats(cluster.settings)
    retried = sum(int(row.get("wretr") or 0) + int(row.get("wredis") or 0) for row in stats if row["pxname"] == "rasa")
    assert retried > retried_before, [(r["svname"], r["status"], r.get("wretr"), r.get("wredis")) for r in stats]
    # the supervisor starts the killed replica again, and HAProxy takes it back
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        rows = {r["svname"]: r["status"] for r in haproxy_stats(cluster.settings) if r["pxname"] == "rasa"}
        if rows.get("rasa-1") == "UP" and cluster.processes["rasa-1"].pid != victim.pid:
            break
        time.sleep(1)
    else:
        pytest.fail(f"rasa-1 did not come back: {rows}")


# --- a gateway that is told to stop drains its calls -------------------------------------------

def test_sigterm_drains_a_live_call_then_says_goodbye_and_exits(cluster):
    settings = Settings(**{**cluster.settings.dict(), "gateway_port": free_port(), "audiosocket_port": free_port(),
                           "load_speech": True, "tts_voice": english_test_voice(), "drain_timeout_s": 6.0,
                           "drain_notice_s": 2.0,
                           "rasa_url": cluster.settings.rasa_url, "host": "127.0.0.1"})
    env = role_env(settings, "gateway")
    log = (settings.var_dir / "logs" / "draining-gateway.log").open("wb")
    gateway = subprocess.Popen([str(settings.project_root / ".venv" / "bin" / "hotline"), "serve", "gateway"],
                               env=env, cwd=settings.project_root, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{settings.gateway_port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert gateway.poll() is None, (settings.var_dir / "logs" / "draining-gateway.log").read_text()[-2000:]
            time.sleep(0.5)

        async def call():
            async with websockets.connect(base.replace("http", "ws") + "/twilio/media-stream", max_size=None) as ws:
                caller = PlayingTwilioCaller(ws, "CA" + uuid.uuid4().hex)  # echoes marks as Twilio does
                listening = asyncio.ensure_future(caller.listen())
                echoing = asyncio.ensure_future(caller.echo_marks())
                await caller.start()
                deadline = time.monotonic() + 120
                while caller.first(lambda m: m["event"] == "media") is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)  # the greeting plays
                gateway.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                await asyncio.sleep(0.5)
                ready = await asyncio.to_thread(requests.get, f"{base}/readyz", timeout=5)
                webhook = await asyncio.to_thread(requests.post, f"{base}/twilio/voice", data={"CallSid": "CAnew"},
                                                  timeout=5)
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", settings.audiosocket_port)
                    writer.close()
                    audiosocket_open = True
                except OSError:
                    audiosocket_open = False
                turn_sent = time.monotonic()
                await caller.dtmf("2")  # the live call is still served: the key is answered
                await asyncio.wait_for(listening, 90)  # until the gateway closes the stream
                echoing.cancel()
                return caller, signalled, turn_sent, ready, webhook, audiosocket_open, time.monotonic()

        caller, signalled, turn_sent, ready, webhook, audiosocket_open, closed_at = asyncio.run(call())
        assert ready.status_code == 503 and ready.json()["draining"] is True
        # Twilio's webhook still answers (the stream URL goes through the balancer); no AudioSocket
        assert webhook.status_code == 200 and "<Stream" in webhook.text and not audiosocket_open
        code = gateway.wait(30)
        assert code in (0, -signal.SIGTERM), code  # uvicorn re-raises the signal after its shutdown
        drained_at = signalled + settings.drain_timeout_s
        media = [t for t, m in caller.log if m["event"] == "media"]
        # the key press was answered during the drain (a clear stopped the greeting, the reply followed) …
        cleared = caller.first(lambda m: m["event"] == "clear", after=turn_sent)
        assert cleared is not None and any(cleared[0] < t < drained_at for t in media)
        # … and after DRAIN_TIMEOUT_S the caller heard a goodbye (> 1 s of speech), then the line closed
        goodbye = [t for t in media if t > drained_at - 0.5]
        assert len(goodbye) > 50, f"{len(goodbye)} goodbye frames"
        assert drained_at < closed_at < drained_at + 30
    finally:
        if gateway.poll() is None:
            gateway.kill()
        log.close()
