"""Only the carriers get through: Twilio requests must carry a valid X-Twilio-Signature (or, with
signature checks off, come from loopback); AudioSocket peers must be listed, may open only so many
connections, and a dead or overlong call is hung up. Real gateways, real HTTP/WS/TCP clients."""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests
import websockets
from twilio.request_validator import RequestValidator

from tests.conftest import ROOT, english_test_voice, free_port
from tests.test_gateway import TwilioCaller, frame, metric_value, read_frames, user_texts
from voice_gateway.carriers import LOOPBACK, address_in, parse_networks, twilio_signature_valid, websocket_url

TOKEN = "carrier-test-token"
PUBLIC_URL = "https://hotline.example.com"
MAX_CALLS, SPARE, IDLE_S, READ_TIMEOUT_S, MAX_CALL_S = 2, 4, 2.0, 2.0, 12.0
HANGUP, UUID, AUDIO = 0x00, 0x01, 0x10
SILENCE = b"\x00" * 320  # 20 ms of slin


@contextlib.contextmanager
def gateway(stack, var_dir, host: str = "127.0.0.1", **env):
    """`python -m voice_gateway` with these settings, on the stack's Rasa; yields (url, AudioSocket port)."""
    port, audiosocket_port = free_port(), free_port()
    values = dict(os.environ, HOST=host, GATEWAY_PORT=str(port), AUDIOSOCKET_PORT=str(audiosocket_port),
                  RASA_PORT=str(stack.settings.rasa_port), RASA_TOKEN=stack.settings.resolved_rasa_token(), RASA_TIMEOUT_S="20",
                  VAR_DIR=str(var_dir), LOAD_SPEECH="false")
    values.update({k.upper(): str(v) for k, v in env.items()})
    log = (var_dir / "gateway.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "voice_gateway"], cwd=ROOT, env=values,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not start:\n" + (var_dir / "gateway.log").read_text()[-3000:])
                time.sleep(0.2)
        yield url, audiosocket_port
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def signed_gateway(stack, tmp_path_factory):
    """Signature checks on (token + public URL), with speech, short AudioSocket timeouts and a
    short longest call."""
    with gateway(stack, tmp_path_factory.mktemp("signed"), load_speech="true", tts_engine="piper", tts_voice=english_test_voice(),
                 twilio_auth_token=TOKEN, public_url=PUBLIC_URL, max_calls=MAX_CALLS, audiosocket_idle_s=IDLE_S,
                 audiosocket_read_timeout=READ_TIMEOUT_S, max_call_s=MAX_CALL_S) as running:
        yield running


def non_loopback_address():
    """An address of this machine that is not loopback (`hostname -I`), or None."""
    try:
        found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return next((a for a in found if ipaddress.ip_address(a).version == 4 and not ipaddress.ip_address(a).is_loopback),
                None)


@pytest.fixture(scope="module")
def open_gateway(stack, tmp_path_factory):
    """No Twilio token, default AudioSocket allow-list, bound to an address that is not loopback
    (so our own connections come from it). Without one: bound to loopback, with an allow-list
    that leaves loopback out."""
    address = non_loopback_address()
    extra = {} if address else {"audiosocket_allowed_peers": "198.51.100.7"}
    with gateway(stack, tmp_path_factory.mktemp("open"), host=address or "127.0.0.1", **extra) as (url, port):
        yield url, port, address


def sign(url: str, params=None) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params or {})


# --- the decisions, on their own ----------------------------------------------------------------

def test_allow_lists_and_signatures():
    networks = parse_networks(" 10.1.2.3, 192.168.0.0/16 ,fd00::/8,")
    assert [str(n) for n in networks] == ["10.1.2.3/32", "192.168.0.0/16", "fd00::/8"]
    assert address_in("10.1.2.3", networks) and address_in("192.168.44.5", networks)
    assert address_in("fd00::2", networks) and address_in("::ffff:192.168.1.1", networks)  # dual-stack socket
    assert not address_in("10.1.2.4", networks) and not address_in("127.0.0.1", networks)
    assert not address_in(None, networks) and not address_in("testclient", networks)
    assert address_in("127.0.0.1", LOOPBACK) and address_in("127.8.9.10", LOOPBACK) and address_in("::1", LOOPBACK)
    assert not address_in("192.0.2.2", LOOPBACK)
    with pytest.raises(ValueError, match="asterisk.local"):
        parse_networks("127.0.0.1,asterisk.local")

    assert websocket_url("https://a.example/x") == "wss://a.example/x"
    assert websocket_url("http://a.example/x") == "ws://a.example/x"
    url, params = PUBLIC_URL + "/twilio/voice", {"CallSid": "CA1", "From": "+8613800000000"}
    assert twilio_signature_valid(TOKEN, url, params, sign(url, params))
    assert twilio_signature_valid(TOKEN, PUBLIC_URL + ":443/twilio/voice", params, sign(url, params))  # port or not
    assert not twilio_signature_valid(TOKEN, url, {**params, "From": "+1"}, sign(url, params))
    assert not twilio_signature_valid(TOKEN, url, params, None)
    assert not twilio_signature_valid("other-token", url, params, sign(url, params))


# --- Twilio ---------------------------------------------------------------------------------------

def test_signed_webhook_gets_twiml_and_forged_ones_get_403(signed_gateway):
    url, _ = signed_gateway
    fields = {"CallSid": "CA" + uuid.uuid4().hex, "From": "+8613800000000", "To": "+864000000000"}
    signed = PUBLIC_URL + "/twilio/voice"
    before = metric_value(url, "hotline_errors_total", transport="twilio", reason="forged_request")

    answer = requests.post(f"{url}/twilio/voice", data=fields, headers={"X-Twilio-Signature": sign(signed, fields)})
    assert answer.status_code == 200, answer.text
    assert f'<Stream url="{websocket_url(PUBLIC_URL)}/twilio/media-stream"' in answer.text
    with_query = requests.post(f"{url}/twilio/voice?region=cn", data=fields,
                               headers={"X-Twilio-Signature": sign(signed + "?region=cn", fields)})
    assert with_query.status_code == 200

    refused = {
        "missing": {},
        "forged": {"X-Twilio-Signature": RequestValidator("not-the-token").compute_signature(signed, fields)},
        "wrong URL": {"X-Twilio-Signature": sign(f"{url}/twilio/voice", fields)},  # not what Twilio signs
        "other fields": {"X-Twilio-Signature": sign(signed, {**fields, "From": "+8613900000000"})},
        "garbage": {"X-Twilio-Signature": "x" * 28},
    }
    for why, headers in refused.items():
        response = requests.post(f"{url}/twilio/voice", data=fields, headers=headers)
        assert response.status_code == 403, why
        assert "<Stream" not in response.text
    forged = metric_value(url, "hotline_errors_total", transport="twilio", reason="forged_request")
    assert forged == before + len(refused)


def test_signed_media_stream_streams_the_greeting_and_unsigned_upgrades_get_403(signed_gateway, stack):
    url, _ = signed_gateway
    ws_url = url.replace("http", "ws") + "/twilio/media-stream"
    signed = websocket_url(PUBLIC_URL) + "/twilio/media-stream"
    before = metric_value(url, "hotline_errors_total", transport="twilio", reason="forged_request")

    async def call():
        async with websockets.connect(ws_url, max_size=None, extra_headers={"X-Twilio-Signature": sign(signed)}) as ws:
            caller = TwilioCaller(ws, "CA" + uuid.uuid4().hex)
            await caller.start()
            await caller.wait_for(lambda m: m["event"] == "media", timeout=30)  # a new gateway's first call
            await caller.send({"event": "stop", "streamSid": caller.stream_sid})
        statuses = {}
        wrong = {"missing": {}, "https form": {"X-Twilio-Signature": sign(PUBLIC_URL + "/twilio/media-stream")},
                 "with params": {"X-Twilio-Signature": sign(signed, {"From": "+8613800000000"})},
                 "local URL": {"X-Twilio-Signature": sign(ws_url)}}
        for why, headers in wrong.items():
            with pytest.raises(websockets.InvalidStatusCode) as refused:
                async with websockets.connect(ws_url, extra_headers=headers):
                    pass
            statuses[why] = refused.value.status_code
        return caller, statuses

    caller, statuses = asyncio.run(call())
    assert [m for m in caller.received if m["event"] == "media"]  # the greeting, as μ-law frames
    assert user_texts(stack, caller.call_sid)[:1] == ["你好"]
    assert statuses == {"missing": 403, "https form": 403, "with params": 403, "local URL": 403}
    assert metric_value(url, "hotline_errors_total", transport="twilio", reason="forged_request") == before + 4


def test_without_a_token_twilio_routes_answer_loopback_only(stack, open_gateway):
    url, _, address = open_gateway
    local = stack.settings.gateway_url  # no token, on loopback: the other tests' Twilio calls
    assert requests.post(f"{local}/twilio/voice", data={"CallSid": "CA1"}).status_code == 200
    # behind a reverse proxy on this machine the client is the forwarded one, not loopback
    proxied = requests.post(f"{local}/twilio/voice", data={"CallSid": "CA1"},
                            headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403
    if address is None:
        pytest.skip("no address other than loopback on this machine: only the proxied client was tried")
    before = metric_value(url, "hotline_errors_total", transport="twilio", reason="not_loopback")
    assert requests.post(f"{url}/twilio/voice", data={"CallSid": "CA1"}).status_code == 403

    async def upgrade():
        with pytest.raises(websockets.InvalidStatusCode) as refused:
            async with websockets.connect(url.replace("http", "ws") + "/twilio/media-stream"):
                pass
        return refused.value.status_code

    assert asyncio.run(upgrade()) == 403
    assert metric_value(url, "hotline_errors_total", transport="twilio", reason="not_loopback") == before + 2
    assert requests.get(f"{url}/healthz").status_code == 200  # other routes are not affected


# --- AudioSocket ----------------------------------------------------------------------------------

async def closed_at_once(reader, within: float = 1.0) -> bool:
    """The server closed the connection without a frame (a reset counts: closing with our bytes
    still unread makes the kernel answer with RST instead of FIN)."""
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except ConnectionResetError:
        return True
    except asyncio.TimeoutError:
        return False


def test_audiosocket_refuses_peers_that_are_not_listed(open_gateway):
    url, port, address = open_gateway

    async def connect():
        reader, writer = await asyncio.open_connection(address or "127.0.0.1", port)
        writer.write(frame(UUID, uuid.uuid4().bytes))
        refused = await closed_at_once(reader)
        writer.close()
        return refused

    before = metric_value(url, "hotline_errors_total", transport="audiosocket", reason="peer_refused")
    assert asyncio.run(connect())
    assert metric_value(url, "hotline_errors_total", transport="audiosocket", reason="peer_refused") == before + 1
    assert metric_value(url, "hotline_active_calls", transport="audiosocket") == 0


def test_audiosocket_connections_are_capped_and_silent_peers_free_their_slot(signed_gateway):
    url, port = signed_gateway
    cap = MAX_CALLS + SPARE
    before = metric_value(url, "hotline_errors_total", transport="audiosocket", reason="too_many_connections")

    async def connections():
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(cap)]
        await asyncio.sleep(0.5)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        one_too_many = await closed_at_once(reader)
        writer.close()
        held = [not await closed_at_once(r, 0.01) for r, _ in silent]  # still open
        # no UUID within the first-frame timeout: the server drops them and the slots are free
        dropped = [await closed_at_once(r, READ_TIMEOUT_S + 2) for r, _ in silent]
        for _, w in silent:
            w.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(UUID, uuid.uuid4().bytes))
        await writer.drain()
        greeting = await read_frames(reader, 8)
        writer.write(frame(HANGUP))
        await writer.drain()
        writer.close()
        return one_too_many, held, dropped, greeting

    one_too_many, held, dropped, greeting = asyncio.run(connections())
    assert one_too_many and all(held) and all(dropped)
    assert any(kind == AUDIO for kind, _ in greeting)  # a real call got a slot again
    refused = metric_value(url, "hotline_errors_total", transport="audiosocket", reason="too_many_connections")
    assert refused == before + 1


def test_audiosocket_call_that_sends_nothing_is_hung_up(signed_gateway):
    url, port = signed_gateway
    before = metric_value(url, "hotline_errors_total", transport="audiosocket", reason="idle")

    async def call():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(UUID, uuid.uuid4().bytes))
        await writer.drain()
        started = time.monotonic()
        frames = await read_frames(reader, IDLE_S + 10)  # until the server closes
        elapsed, at_eof = time.monotonic() - started, reader.at_eof()
        writer.close()
        return frames, elapsed, at_eof

    frames, elapsed, at_eof = asyncio.run(call())
    assert frames and frames[-1] == (HANGUP, b"") and at_eof
    assert IDLE_S <= elapsed < IDLE_S + 3
    assert metric_value(url, "hotline_errors_total", transport="audiosocket", reason="idle") == before + 1


def test_calls_end_with_a_goodbye_at_the_longest_call_length(signed_gateway):
    """Both phone transports: a call that is still talking at MAX_CALL_S hears a goodbye and is
    hung up (AudioSocket: a hang-up frame; Twilio: the media stream is closed)."""
    url, port = signed_gateway
    signed = websocket_url(PUBLIC_URL) + "/twilio/media-stream"

    async def audiosocket_call():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(UUID, uuid.uuid4().bytes))
        started, frames = time.monotonic(), []

        async def keep_talking():  # silence every 20 ms, as Asterisk sends it: never idle
            with contextlib.suppress(ConnectionError):
                while not writer.is_closing():
                    writer.write(frame(AUDIO, SILENCE))
                    await writer.drain()
                    await asyncio.sleep(0.02)

        talking = asyncio.ensure_future(keep_talking())
        while not reader.at_eof() and time.monotonic() - started < MAX_CALL_S + 60:
            frames += [(time.monotonic() - started, kind) for kind, _ in await read_frames(reader, 0.5)]
        talking.cancel()
        writer.close()
        return frames, reader.at_eof()

    async def twilio_call():
        async with websockets.connect(url.replace("http", "ws") + "/twilio/media-stream", max_size=None,
                                      extra_headers={"X-Twilio-Signature": sign(signed)}) as ws:
            caller = TwilioCaller(ws, "CA" + uuid.uuid4().hex)
            await caller.start()
            started, media_at = time.monotonic(), []
            with contextlib.suppress(websockets.ConnectionClosed):
                while time.monotonic() - started < MAX_CALL_S + 30:
                    message = json.loads(await asyncio.wait_for(ws.recv(), MAX_CALL_S + 30))
                    if message["event"] == "media":
                        media_at.append(time.monotonic() - started)
                    elif message["event"] == "mark":  # Twilio's echo: "played" (at once, here)
                        await ws.send(json.dumps(message))
            return media_at, ws.closed, time.monotonic() - started

    async def both():
        return await asyncio.gather(audiosocket_call(), twilio_call())

    before = {t: metric_value(url, "hotline_errors_total", transport=t, reason="max_call_length")
              for t in ("audiosocket", "twilio")}
    (frames, at_eof), (media_at, ws_closed, twilio_elapsed) = asyncio.run(both())

    assert at_eof and frames[-1][1] == HANGUP
    goodbye = [at for at, kind in frames if kind == AUDIO and at >= MAX_CALL_S]
    # spoken in full (paced in real time; the English test voice spells the Chinese out), then hung up
    assert goodbye and frames[-1][0] < MAX_CALL_S + 45
    assert ws_closed and MAX_CALL_S <= twilio_elapsed < MAX_CALL_S + 15
    assert [at for at in media_at if at >= MAX_CALL_S]  # the goodbye, before the stream closed
    for transport in ("audiosocket", "twilio"):
        assert metric_value(url, "hotline_errors_total", transport=transport, reason="max_call_length") == \
            before[transport] + 1
