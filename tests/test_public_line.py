"""The attacks and faults of a public line, against the real servers: guessing order details
across conversations, reading someone else's case, forged intents, floods, oversize bodies, a dead
or stalled action server, and what is exposed on the network."""
from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests
import websockets

from actions.records.client import SqlRecordsClient
from actions.records.models import Order
from actions.records.seed import seed
from hotline.launcher import Stack
from tests.conftest import ROOT, Conversation, free_port, stack_settings
from voice_gateway.audio import AudioError, decode
from voice_gateway.rasa_client import APOLOGY


def say(settings, sender: str, text: str, client: str) -> str:
    """One turn on Rasa's REST channel with the metadata the gateway adds (the client address)."""
    response = requests.post(f"{settings.rasa_url}/webhooks/rest/webhook", timeout=60,
                             json={"sender": sender, "message": text, "metadata": {"client": client}})
    response.raise_for_status()
    return "\n".join(m.get("text", "") for m in response.json() if m.get("text"))


def new_order(settings, tail: str) -> str:
    number = "W2" + "".join(secrets.choice("0123456789") for _ in range(9))
    client = SqlRecordsClient(settings.resolved_database_url())
    with client.Session.begin() as session:
        session.add(Order(order_number=number, phone=f"138000{tail}", items="Apple Vision Pro 测试订单",
                          status="shipped", placed_on=dt.date(2026, 11, 20), carrier="顺丰速运",
                          estimated_delivery=dt.date(2026, 11, 28)))
    return number


# --- guessing -----------------------------------------------------------------------------

def test_guessing_a_phone_tail_across_conversations_and_addresses_meets_a_lock(stack):
    order = new_order(stack.settings, "4321")
    replies = []
    for attempt, tail in enumerate(("0000", "1111", "2222")):  # each guess from a new conversation and address
        sender, client = f"guess-{uuid.uuid4().hex[:8]}", f"198.51.100.{attempt + 1}"
        say(stack.settings, sender, f"查订单 {order}", client)
        replies.append(say(stack.settings, sender, tail, client))
    assert all("不一致" in r for r in replies[:2]) and "多次未能核对成功" in replies[2], replies
    sender = f"guess-{uuid.uuid4().hex[:8]}"
    say(stack.settings, sender, f"查订单 {order}", "198.51.100.9")
    locked = say(stack.settings, sender, "4321", "198.51.100.9")  # the right tail, too late
    assert "Vision" not in locked and "顺丰" not in locked
    assert "转接人工顾问" in locked  # a locked order is offered to an advisor
    assert "人工" in say(stack.settings, sender, "好的", "198.51.100.9")


def test_a_case_is_told_only_to_whoever_opened_it(stack):
    owner = Conversation(stack.settings, f"owner-{uuid.uuid4().hex[:8]}")
    owner.reply("我的iPhone进水了开不了机")
    case_number = next(m["custom"]["case_number"] for m in owner.say("转人工") if m.get("custom"))
    again = next(m["custom"]["case_number"] for m in owner.say("转人工") if m.get("custom"))
    assert again == case_number  # asking again does not open case after case
    stranger = say(stack.settings, f"stranger-{uuid.uuid4().hex[:8]}", f"查一下案例{case_number}", "198.51.100.50")
    assert "进水" not in stranger and "创建于" not in stranger and "没能核实" in stranger
    assert "创建于" in owner.reply(f"查一下案例{case_number}")


def test_typed_intents_are_words_and_buttons_only_work_when_offered(stack):
    url = stack.settings.gateway_url + "/v1/chat"
    reply = requests.post(url, json={"text": "/human_handoff"}).json()
    assert user_texts(stack, reply["session_id"]) == ["human_handoff"]
    # "/warranty" was never offered to this session: read as the word "warranty"
    second = requests.post(url, json={"text": "/warranty", "session_id": reply["session_id"]}).json()
    assert user_texts(stack, reply["session_id"])[-1] == "warranty"
    assert second["confidence"] != 1.0


def test_random_letters_and_bare_punctuation_are_not_a_topic(stack):
    """Noise typed into a chat ("asdf qwer", "。") must not be answered as, say, a scam report."""
    import random

    rng = random.Random(9)
    noise = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             + " " + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 6)))
             for _ in range(20)] + ["。", "？？", "...", "\u200b"]
    topics = set()
    for text in noise:
        parsed = requests.post(f"{stack.settings.rasa_url}/model/parse", json={"text": text},
                               params={"token": stack.settings.resolved_rasa_token()}).json()
        topics.add(parsed["intent"]["name"] if parsed["intent"]["confidence"] >= 0.5 else "nlu_fallback")
    assert topics <= {"out_of_scope", "nlu_fallback"}, topics


def user_texts(stack, sender):
    return [e.get("text") for e in Conversation(stack.settings, sender).tracker()["events"] if e.get("event") == "user"]


# --- what is exposed ----------------------------------------------------------------------

def test_action_server_runs_actions_only_for_rasa(stack):
    url = stack.settings.action_url
    body = {"next_action": "action_human_handoff", "sender_id": "intruder",
            "tracker": {"sender_id": "intruder", "slots": {}, "latest_message": {}, "events": []}, "domain": {}}
    assert requests.post(f"{url}/webhook", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.post(f"{url}/webhook", json=body, headers=wrong).status_code == 401
    assert requests.get(f"{url}/health").status_code == 200  # probes need no secret


def test_rasa_and_actions_listen_on_loopback_and_tokens_stay_off_the_command_line(stack):
    for port in (stack.settings.rasa_port, stack.settings.action_port):
        assert listening_addresses(port) == {"127.0.0.1"}
    token = stack.settings.resolved_rasa_token()
    for name, pid in stack.pids().items():
        children = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
        for child in children + [str(pid)]:
            try:
                cmdline = open(f"/proc/{child}/cmdline", "rb").read().decode(errors="replace")
            except FileNotFoundError:
                continue
            assert token not in cmdline and stack.settings.resolved_action_token() not in cmdline, name
    for name in ("rasa", "action_server"):  # the carrier's secret goes to the gateway only
        environ = open(f"/proc/{stack.pids()[name]}/environ", "rb").read()
        assert b"TWILIO_AUTH_TOKEN=" not in environ and b"TRAINER_TOKEN=" not in environ, name
    assert b"TWILIO_AUTH_TOKEN=" in open(f"/proc/{stack.pids()['gateway']}/environ", "rb").read()
    endpoints = (stack.settings.var_dir / "endpoints.yml")
    assert stack.settings.resolved_action_token() not in endpoints.read_text()
    assert endpoints.stat().st_mode & 0o077 == 0


def listening_addresses(port: int) -> set:
    """Local addresses with a listening TCP socket on `port` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


# --- limits (a second, text-only gateway with small limits) --------------------------------

@pytest.fixture(scope="module")
def strict_gateway(stack, tmp_path_factory):
    port = free_port()
    env = dict(os.environ, GATEWAY_PORT=str(port), RASA_PORT=str(stack.settings.rasa_port),
               AUDIOSOCKET_PORT=str(free_port()), LOAD_SPEECH="false", VAR_DIR=str(tmp_path_factory.mktemp("strict")),
               RASA_TOKEN=stack.settings.resolved_rasa_token(), RASA_TIMEOUT_S="20", RATE_LIMIT_CHAT="3/minute",
               RATE_LIMIT_VOICE="2/minute", MAX_REQUEST_BYTES=str(256 * 1024), WS_MAX_BYTES=str(8 * 1024))
    process = subprocess.Popen([sys.executable, "-m", "voice_gateway"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=15)


def test_chat_flood_from_one_client_is_refused_with_retry_after(strict_gateway):
    codes = [requests.post(f"{strict_gateway}/v1/chat", json={"text": "你好"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = requests.post(f"{strict_gateway}/v1/chat", json={"text": "你好"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert requests.get(f"{strict_gateway}/healthz").status_code == 200  # other routes still answer


def test_oversize_bodies_are_refused_while_streaming(strict_gateway):
    def chunks():  # a valid upload without Content-Length: its size is only known while it streams
        yield (b'--x\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
               b"Content-Type: audio/wav\r\n\r\n")
        for _ in range(64):
            yield b"\1" * 16384

    streamed = requests.post(f"{strict_gateway}/v1/voice/turn", data=chunks(),
                             headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert streamed.status_code == 413, streamed.text
    # A declared size over the limit is refused before a byte of the body is sent.
    host, port = strict_gateway.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000000000\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 413")


def test_websocket_messages_are_size_limited(strict_gateway):
    import asyncio

    async def oversize():
        url = strict_gateway.replace("http", "ws") + "/v1/voice/stream"
        async with websockets.connect(url, max_size=None) as ws:
            await ws.recv()  # ready
            await ws.send(b"\0" * (64 * 1024))
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as closed:
                return closed.code

    assert asyncio.run(oversize()) == 1009  # "message too big"


def test_only_audio_containers_are_decoded():
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    with pytest.raises(AudioError):
        decode(playlist)


# --- faults -------------------------------------------------------------------------------

@pytest.fixture
def own_stack(trained_settings, tmp_path):
    settings = stack_settings(trained_settings, tmp_path, max_restarts=1, rasa_timeout_s=2.5)
    seed(SqlRecordsClient(settings.resolved_database_url()))
    with Stack(settings) as running:
        yield running


def timed_chat(url: str, text: str, session: str):
    started = time.monotonic()
    reply = requests.post(f"{url}/v1/chat", json={"text": text, "session_id": session}, timeout=60).json()
    return time.monotonic() - started, reply


def test_dead_or_stalled_action_server_gets_a_quick_apology_and_a_restart(own_stack):
    url, settings = own_stack.settings.gateway_url, own_stack.settings
    action_pid = own_stack.pids()["action_server"]
    os.killpg(action_pid, signal.SIGSTOP)  # stalled: accepts connections, never answers
    try:
        seconds, reply = timed_chat(url, "转人工", "stalled-1")
    finally:
        os.killpg(action_pid, signal.SIGCONT)
    assert reply["replies"] == [APOLOGY] and seconds < settings.rasa_timeout_s + 1

    os.killpg(action_pid, signal.SIGKILL)  # dead
    seconds, reply = timed_chat(url, "转人工", "dead-1")
    assert reply["replies"] == [APOLOGY] and seconds < settings.rasa_timeout_s + 1
    deadline = time.monotonic() + 90  # restarted with back-off
    while time.monotonic() < deadline:
        _, reply = timed_chat(url, "转人工", f"after-{uuid.uuid4().hex[:6]}")
        if reply.get("handoff"):
            break
        time.sleep(1)
    assert reply["handoff"]["case_number"]
    assert own_stack.pids()["action_server"] != action_pid and len(own_stack.restarts["action_server"]) == 1

    os.killpg(own_stack.pids()["action_server"], signal.SIGKILL)  # again: over max_restarts=1
    deadline = time.monotonic() + 30
    while own_stack.gave_up is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert own_stack.gave_up and "action_server exited" in own_stack.gave_up and "giving up" in own_stack.gave_up
