"""Wire formats, against messages written as the providers document them."""
from __future__ import annotations

import asyncio
import base64
import json
import struct

import pytest

from voice_gateway.serializers import ProtocolError
from voice_gateway.serializers import audiosocket, twilio

# Field for field as in Twilio's "Media Streams - WebSocket Messages" documentation.
CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START = {"event": "start", "sequenceNumber": "1",
         "start": {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
                   "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "tracks": ["inbound"],
                   "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                   "customParameters": {"FirstName": "Jane"}},
         "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0"}
MEDIA = {"event": "media", "sequenceNumber": "3",
         "media": {"track": "inbound", "chunk": "1", "timestamp": "5",
                   "payload": base64.b64encode(b"\x7f" * 160).decode()},
         "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0"}
DTMF = {"event": "dtmf", "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0", "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "1"}}
MARK = {"event": "mark", "sequenceNumber": "4", "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
        "mark": {"name": "my label"}}
STOP = {"event": "stop", "sequenceNumber": "5",
        "stop": {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"},
        "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0"}


def test_twilio_inbound_messages():
    assert isinstance(twilio.parse(json.dumps(CONNECTED)), twilio.Connected)
    start = twilio.parse(json.dumps(START))
    assert (start.stream_sid, start.call_sid, start.custom_parameters) == (
        "MZ18ad3ab5a668481ce02b83e7395059f0", "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", {"FirstName": "Jane"})
    media = twilio.parse(json.dumps(MEDIA))
    assert media.payload == b"\x7f" * 160 and media.timestamp_ms == 5
    assert twilio.parse(json.dumps(DTMF)).digit == "1"
    assert twilio.parse(json.dumps(MARK)).name == "my label"
    assert isinstance(twilio.parse(json.dumps(STOP)), twilio.Stop)


@pytest.mark.parametrize("message", [
    "not json", "[]", json.dumps({"event": "media", "media": {"payload": "!!!notbase64"}}),
    json.dumps({"event": "start", "start": {}}), json.dumps({"event": "dtmf", "dtmf": {"digit": "x"}}),
    json.dumps({"event": "launch"}),
])
def test_twilio_malformed_messages_raise_protocol_errors(message):
    with pytest.raises(ProtocolError):
        twilio.parse(message)


def test_twilio_outbound_messages():
    media = json.loads(twilio.media("MZ1", b"\xff" * 160))
    assert media == {"event": "media", "streamSid": "MZ1", "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}
    assert json.loads(twilio.mark("MZ1", "m1")) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "m1"}}
    assert json.loads(twilio.clear("MZ1")) == {"event": "clear", "streamSid": "MZ1"}
    twiml = twilio.twiml_connect_stream("wss://bot.example/twilio/media-stream", {"From": "+86 138"})
    assert "<Connect><Stream url=\"wss://bot.example/twilio/media-stream\">" in twiml
    assert '<Parameter name="From" value="+86 138"/>' in twiml


def read(data: bytes, timeout: float = 0.5):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await audiosocket.read_frame(reader, timeout)

    return asyncio.run(go())


def test_audiosocket_frames_follow_the_documented_layout():
    assert audiosocket.frame(audiosocket.AUDIO, b"\x01\x02") == b"\x10\x00\x02\x01\x02"
    assert read(bytes([0x03, 0x00, 0x01]) + b"5") == (audiosocket.DTMF, b"5")
    assert read(b"\x00\x00\x00") == (audiosocket.HANGUP, b"")
    uuid_bytes = bytes(range(16))
    kind, payload = read(struct.pack(">BH", 0x01, 16) + uuid_bytes)
    assert audiosocket.parse_uuid(payload) == "00010203-0405-0607-0809-0a0b0c0d0e0f"


def test_audiosocket_rejects_bad_frames():
    with pytest.raises(ProtocolError, match="unknown"):
        read(b"\x42\x00\x00")
    with pytest.raises(ProtocolError, match="exceeds"):
        read(struct.pack(">BH", 0x10, 60000))

    async def lying_length():
        reader = asyncio.StreamReader()
        reader.feed_data(struct.pack(">BH", 0x10, 320) + b"\x00" * 10)  # promises 320, sends 10, stays open
        return await audiosocket.read_frame(reader, 0.2)

    with pytest.raises(ProtocolError, match="did not arrive"):
        asyncio.run(lying_length())


# --- one interface for every wire format (voice_gateway.serializers.FrameSerializer) -------------

from voice_gateway.audio import mulaw_decode  # noqa: E402
from voice_gateway.serializers import (Audio, CallStarted, Dtmf, Hangup, Ignored, Mark,  # noqa: E402
                                       Unsupported)

CALL_UUID = bytes(range(16))
PCM_20MS = bytes(range(256)) + bytes(64)  # 320 bytes: 160 samples


def twilio_frame_payload(message: str) -> bytes:
    data = json.loads(message)
    assert data["event"] == "media" and data["streamSid"] == START["streamSid"]
    return base64.b64decode(data["media"]["payload"])


def audiosocket_frame_payload(message: bytes) -> bytes:
    kind, length = struct.unpack(">BH", message[:3])
    assert kind == audiosocket.AUDIO and length == len(message) - 3
    return message[3:]


WIRES = {
    "twilio": dict(
        make=twilio.TwilioSerializer, start=json.dumps(START),
        started=CallStarted(START["start"]["callSid"], None, {"FirstName": "Jane"}),
        audio=json.dumps(MEDIA), pcm=mulaw_decode(b"\x7f" * 160), dtmf=json.dumps(DTMF), stop=json.dumps(STOP),
        payload=twilio_frame_payload, frame_bytes=160, silence=b"\xff",
        clear={"event": "clear", "streamSid": START["streamSid"]},
        mark={"event": "mark", "streamSid": START["streamSid"], "mark": {"name": "m1"}}, hangup=None),
    "audiosocket": dict(
        make=audiosocket.AudioSocketSerializer, start=(audiosocket.UUID, CALL_UUID),
        started=CallStarted("00010203-0405-0607-0809-0a0b0c0d0e0f"),
        audio=(audiosocket.AUDIO, PCM_20MS), pcm=PCM_20MS, dtmf=(audiosocket.DTMF, b"1"),
        stop=(audiosocket.HANGUP, b""), payload=audiosocket_frame_payload, frame_bytes=320, silence=b"\x00",
        clear=None, mark=None, hangup=b"\x00\x00\x00"),
}


def started(name):
    wire = WIRES[name]
    serializer = wire["make"]()
    assert serializer.parse(wire["start"]) == wire["started"]
    return serializer, wire


@pytest.mark.parametrize("name", WIRES)
def test_every_serializer_parses_its_messages_into_the_shared_events(name):
    serializer, wire = started(name)
    assert serializer.name == name
    assert serializer.parse(wire["audio"]) == Audio(wire["pcm"]) and len(wire["pcm"]) == 320
    assert serializer.parse(wire["dtmf"]) == Dtmf("1")
    assert serializer.parse(wire["stop"]) == Hangup()
    assert isinstance(serializer.parse(wire["start"]), Ignored)  # a second start changes nothing


@pytest.mark.parametrize("name", WIRES)
def test_every_serializer_frames_audio_in_20_ms_padded_with_silence(name):
    serializer, wire = started(name)
    frames = serializer.audio(PCM_20MS + PCM_20MS[:100])  # 1.3 frames
    payloads = [wire["payload"](frame) for frame in frames]
    assert [len(p) for p in payloads] == [wire["frame_bytes"]] * 2
    tail = 100 * wire["frame_bytes"] // 320  # μ-law: one byte a sample
    assert payloads[1][tail:] == wire["silence"] * (wire["frame_bytes"] - tail)
    assert serializer.audio(b"") == []


@pytest.mark.parametrize("name", WIRES)
def test_every_serializer_has_clear_mark_and_hangup_or_none(name):
    serializer, wire = started(name)
    decode = (lambda frame: None if frame is None else json.loads(frame)) if name == "twilio" else (lambda f: f)
    assert decode(serializer.clear()) == wire["clear"]
    assert decode(serializer.mark("m1")) == wire["mark"]
    assert serializer.hangup() == wire["hangup"]


def test_twilio_marks_come_back_and_other_media_formats_are_refused():
    serializer, _ = started("twilio")
    assert serializer.parse(json.dumps(MARK)) == Mark("my label")
    assert isinstance(serializer.parse(json.dumps(CONNECTED)), Ignored)
    other = json.loads(json.dumps(START))
    other["start"]["mediaFormat"]["sampleRate"] = 16000
    with pytest.raises(Unsupported):
        twilio.TwilioSerializer().parse(json.dumps(other))
    with_caller = json.loads(json.dumps(START))
    with_caller["start"]["customParameters"] = {"From": "+8613800000000"}
    assert twilio.TwilioSerializer().parse(json.dumps(with_caller)).caller == "+8613800000000"


def test_audiosocket_wants_the_uuid_first_and_ignores_keys_that_are_not_keys():
    with pytest.raises(ProtocolError, match="first frame"):
        audiosocket.AudioSocketSerializer().parse((audiosocket.AUDIO, PCM_20MS))
    serializer, _ = started("audiosocket")
    assert isinstance(serializer.parse((audiosocket.DTMF, b"x")), Ignored)
    assert serializer.parse((audiosocket.ERROR, b"\x00")) == Hangup()


# --- a third wire format: one serializer + a few lines drive a PhoneCall ------------------------

class RawPcmSerializer:
    """Raw 20 ms PCM16 binary frames, text control messages ("start:<id>", "key:<d>", "bye")."""
    name = "rawpcm"
    skips_bad_messages = True

    def parse(self, raw):
        if isinstance(raw, bytes):
            return Audio(raw)
        kind, _, value = raw.partition(":")
        if kind == "start":
            return CallStarted(value, caller="+86 10 0000")
        if kind == "key":
            return Dtmf(value)
        if kind == "bye":
            return Hangup()
        raise ProtocolError(f"unknown message {raw!r}")

    def audio(self, pcm16_8k):
        return [pcm16_8k[i:i + 320].ljust(320, b"\x00") for i in range(0, len(pcm16_8k), 320)]

    def clear(self):
        return None

    def mark(self, name):
        return None

    def hangup(self):
        return "bye"

    def error(self):
        return None


class MemoryConnection:
    def __init__(self, messages):
        self.messages, self.sent, self.closed = list(messages), [], False

    async def receive(self):
        await asyncio.sleep(0.01)
        return self.messages.pop(0) if self.messages else None

    async def send(self, frame):
        self.sent.append(frame)

    async def close(self, refused=None):
        self.closed = True


class ScriptedPipeline:
    """What PhoneCall needs of a VoicePipeline, without Rasa or voices."""
    recognition = None

    def __init__(self):
        self.inputs = []

    async def text_turn(self, call_id, text, transport, channel, metadata):
        from types import SimpleNamespace
        self.inputs.append((call_id, text, transport, metadata))
        return SimpleNamespace(texts=[f"reply to {text}"], error=None, buttons=[], intent="x", handoff=None,
                               requested_slot=None)

    async def speak(self, texts):
        from types import SimpleNamespace
        for _ in texts:
            yield SimpleNamespace(sample_rate=8000, pcm16=b"\x01\x00" * 400, cached=False, text="")  # 100 ms


def test_a_serializer_defined_here_drives_a_call_through_the_generic_loop():
    from voice_gateway.transports.call import CallSetup
    from voice_gateway.transports.stream import MediaOutput, run_media_stream

    pipeline = ScriptedPipeline()
    connection = MemoryConnection(["start:call-7", "nonsense", b"\x00" * 320, "key:4", "key:2", "key:#"])

    async def scenario():
        serializer = RawPcmSerializer()
        call = await run_media_stream(serializer, connection, CallSetup(pipeline),
                                      lambda started: MediaOutput(serializer, connection))
        return call

    async def with_hangup():
        call_task = asyncio.ensure_future(scenario())
        for _ in range(200):
            await asyncio.sleep(0.02)
            if len(pipeline.inputs) == 2 and len(connection.sent) >= 8:
                break
        connection.messages.append("bye")
        return await call_task

    call = asyncio.run(with_hangup())
    assert call.call_id == "call-7" and call.transport == "rawpcm" and call.closed
    assert call.caller == "+86 10 0000"
    assert [(i[0], i[1], i[2]) for i in pipeline.inputs] == [("call-7", "你好", "rawpcm"), ("call-7", "42", "rawpcm")]
    assert connection.sent and all(len(frame) == 320 for frame in connection.sent)  # 20 ms frames
