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
