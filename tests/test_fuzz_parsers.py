"""Hypothesis on the telephony wire parsers (voice_gateway/serializers): whatever a peer sends,
the Twilio Media Streams parser and the AudioSocket frame reader either give a well-typed event
or raise the module's ProtocolError (which the transports log and skip); valid messages round-trip;
payloads stay within their bounds. Derandomized with no example database: every run tries the
same inputs. The number of examples run is printed at the end."""
from __future__ import annotations

import asyncio
import base64
import json
import struct
import sys
import uuid
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import show
from voice_gateway.audio import mulaw_decode, mulaw_encode
from voice_gateway.serializers import ProtocolError
from voice_gateway.serializers import audiosocket, twilio
from voice_gateway.transports.twilio import MAX_MESSAGE_BYTES

EXAMPLES: Counter = Counter()


def fuzz(max_examples: int):
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def report_examples(request):
    yield
    lines = [f"hypothesis: {sum(EXAMPLES.values())} examples run on the wire parsers"]
    lines += [f"  {name}: {count}" for name, count in sorted(EXAMPLES.items())]
    show(request, lines)


def count() -> None:
    """One more example run by the calling test."""
    EXAMPLES[sys._getframe(1).f_code.co_name] += 1


# --- Twilio Media Streams ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
texts = st.text(max_size=40)
EVENTS = ["connected", "start", "media", "dtmf", "mark", "stop"]
# Messages shaped like Twilio's, with every field possibly missing or of any JSON type, so the
# parser's deeper branches are reached (a fully random object rarely has a known "event").
twilio_like = st.fixed_dictionaries(
    {"event": st.sampled_from(EVENTS) | json_values},
    optional={
        "streamSid": texts | json_values,
        "sequenceNumber": json_values,
        "start": json_values | st.fixed_dictionaries({}, optional={
            "streamSid": texts | json_values, "callSid": texts | json_values,
            "customParameters": st.dictionaries(texts, texts) | json_values,
            "mediaFormat": json_values | st.fixed_dictionaries({}, optional={
                "encoding": st.just("audio/x-mulaw") | json_values,
                "sampleRate": st.just(8000) | json_values}),
        }),
        "media": json_values | st.fixed_dictionaries({}, optional={
            "payload": st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()) | texts | json_values,
            "timestamp": st.integers(0, 10**9).map(str) | json_values, "track": texts}),
        "dtmf": json_values | st.fixed_dictionaries({}, optional={"digit": st.sampled_from(list("0123456789*#")) | json_values}),
        "mark": json_values | st.fixed_dictionaries({}, optional={"name": texts | json_values}),
    })
# Deeply nested JSON, still under the transport's message limit (so it does reach the parser).
deeply_nested = st.sampled_from(["[", '{"a":', '{"event":"media","media":[']).flatmap(
    lambda unit: st.integers(1, MAX_MESSAGE_BYTES // len(unit)).map(lambda depth: unit * depth))


def assert_well_typed(event, message: str) -> None:
    """What the transports rely on: the declared field types, and a payload no larger than the message allows."""
    assert isinstance(event, (twilio.Connected, twilio.Start, twilio.Media, twilio.Dtmf, twilio.Mark, twilio.Stop))
    if hasattr(event, "stream_sid"):
        assert isinstance(event.stream_sid, str)
    if isinstance(event, twilio.Start):
        assert isinstance(event.call_sid, str) and isinstance(event.encoding, str)
        assert isinstance(event.sample_rate, int)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in event.custom_parameters.items())
    if isinstance(event, twilio.Media):
        assert isinstance(event.payload, bytes) and isinstance(event.timestamp_ms, int)
        assert len(event.payload) * 4 <= len(message) * 3  # base64 inside the message: bounded by its size
    if isinstance(event, twilio.Dtmf):
        assert event.digit in "0123456789*#" and len(event.digit) == 1
    if isinstance(event, twilio.Mark):
        assert isinstance(event.name, str)


def parse_or_protocol_error(message: str):
    try:
        event = twilio.parse(message)
    except ProtocolError:
        return None
    assert_well_typed(event, message)
    return event


@fuzz(500)
@given(message=st.text(max_size=200))
def test_twilio_any_text_is_an_event_or_a_protocol_error(message):
    count()
    parse_or_protocol_error(message)


@fuzz(300)
@given(value=json_values)
def test_twilio_any_json_is_an_event_or_a_protocol_error(value):
    count()
    parse_or_protocol_error(json.dumps(value))


@fuzz(500)
@given(message=twilio_like)
# What this test found in the parser (fixed in serializers/twilio.py), kept as fixed examples:
@example(message={"event": "start", "start": None})  # AttributeError
@example(message={"event": "start", "start": {"callSid": "CA1", "mediaFormat": 5}})  # AttributeError
@example(message={"event": "start", "start": {"callSid": "CA1", "mediaFormat": {"sampleRate": float("inf")}}})  # OverflowError
@example(message={"event": "media", "media": {"payload": "", "timestamp": float("inf")}})  # OverflowError
@example(message={"event": "start", "start": {"callSid": None}})  # call_sid None
@example(message={"event": "start", "start": {"callSid": ["CA1"]}})  # call_sid a list
@example(message={"event": "stop", "streamSid": None})  # stream_sid None
@example(message={"event": "media", "streamSid": 5, "media": {"payload": ""}})  # stream_sid an int
@example(message={"event": "start", "start": {"callSid": "CA1", "customParameters": {"From": 5}}})  # non-string value
def test_twilio_like_messages_are_events_or_protocol_errors(message):
    count()
    parse_or_protocol_error(json.dumps(message))


@fuzz(50)
@given(message=deeply_nested)
def test_twilio_deeply_nested_json_is_a_protocol_error(message):
    count()
    assert len(message) <= MAX_MESSAGE_BYTES
    with pytest.raises(ProtocolError):
        twilio.parse(message)


@fuzz(300)
@given(sid=texts, payload=st.binary(max_size=4 * twilio.FRAME_BYTES))
def test_twilio_outgoing_media_round_trips(sid, payload):
    count()
    assert twilio.parse(twilio.media(sid, payload)) == twilio.Media(stream_sid=sid, payload=payload, timestamp_ms=0)


@fuzz(300)
@given(sid=texts, name=texts)
def test_twilio_mark_round_trips(sid, name):
    count()
    assert twilio.parse(twilio.mark(sid, name)) == twilio.Mark(stream_sid=sid, name=name)


@fuzz(300)
@given(stream_sid=texts, call_sid=texts, parameters=st.dictionaries(texts, texts, max_size=4),
       payload=st.binary(max_size=twilio.FRAME_BYTES), timestamp=st.integers(0, 10**9),
       digit=st.sampled_from(list("0123456789*#")))
def test_twilio_documented_messages_round_trip(stream_sid, call_sid, parameters, payload, timestamp, digit):
    """Messages laid out as Twilio documents them (tests/test_serializers.py), with arbitrary values."""
    count()
    start = {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
             "start": {"streamSid": stream_sid, "callSid": call_sid, "tracks": ["inbound"], "customParameters": parameters,
                       "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
    parsed = twilio.parse(json.dumps(start))
    assert parsed == twilio.Start(stream_sid=stream_sid or "", call_sid=call_sid, custom_parameters=parameters)
    media = {"event": "media", "streamSid": stream_sid,
             "media": {"track": "inbound", "timestamp": str(timestamp), "payload": base64.b64encode(payload).decode()}}
    assert twilio.parse(json.dumps(media)) == twilio.Media(stream_sid, payload, timestamp)
    assert twilio.parse(json.dumps({"event": "dtmf", "streamSid": stream_sid, "dtmf": {"digit": digit}})).digit == digit
    assert isinstance(twilio.parse(json.dumps({"event": "stop", "streamSid": stream_sid})), twilio.Stop)


@fuzz(300)
@given(pcm=st.binary(max_size=2 * 4 * twilio.FRAME_BYTES))
def test_mulaw_through_twilio_media_round_trips(pcm):
    """PCM → μ-law → media message → parse → PCM: the μ-law bytes survive exactly, and each sample comes
    back with its sign and within G.711's quantisation error."""
    count()
    mulaw = mulaw_encode(pcm)
    assert len(mulaw) == len(pcm) // 2  # an odd trailing byte is not a sample
    received = twilio.parse(twilio.media("MZ1", mulaw)).payload
    assert received == mulaw
    back = np.frombuffer(mulaw_decode(received), dtype="<i2").astype(np.int64)
    sent = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.int64)
    assert back.shape == sent.shape
    assert np.all(np.abs(back - sent) <= np.maximum(12, np.abs(sent) // 16))
    assert np.all(np.sign(back) * np.sign(sent) >= 0)


@fuzz(300)
@given(mulaw=st.binary(max_size=4 * twilio.FRAME_BYTES))
def test_mulaw_decode_then_encode_is_identity(mulaw):
    count()
    assert len(mulaw_decode(mulaw)) == 2 * len(mulaw)
    # 0x7f is μ-law's "negative zero": it decodes to 0, which encodes as 0xff.
    assert mulaw_encode(mulaw_decode(mulaw)) == mulaw.replace(b"\x7f", b"\xff")


# --- AudioSocket -------------------------------------------------------------------------------

async def read_all(data: bytes, chunks: list, timeout: float, eof: bool = True):
    """Feed `data` in the given chunk sizes (yielding to the loop between them), then read one frame.
    Returns ((kind, payload) or the exception, bytes left unread)."""
    reader = asyncio.StreamReader()

    async def feed():
        position = 0
        for size in chunks + [len(data)]:
            reader.feed_data(data[position:position + size])
            position += size
            await asyncio.sleep(0)
        if eof:
            reader.feed_eof()

    feeder = asyncio.ensure_future(feed())
    try:
        result = await audiosocket.read_frame(reader, timeout)
    except (ProtocolError, asyncio.IncompleteReadError) as error:
        result = error
    await feeder
    if not eof:
        reader.feed_eof()
    return result, await reader.read()  # what a caller of read_frame would read next


def expected_frame(data: bytes):
    """What the format says a frame is: None if it cannot be a complete, acceptable frame."""
    if len(data) < 3:
        return "short"
    kind, length = struct.unpack(">BH", data[:3])
    if kind not in audiosocket.KINDS or length > audiosocket.MAX_PAYLOAD:
        return "refused"
    if len(data) < 3 + length:
        return "short"
    return kind, data[3:3 + length]


frame_bytes = st.one_of(
    st.binary(max_size=64),
    st.tuples(st.sampled_from(sorted(audiosocket.KINDS)) | st.integers(0, 255), st.integers(0, 0xFFFF),
              st.binary(max_size=audiosocket.FRAME_BYTES * 2)).map(lambda t: struct.pack(">BH", t[0], t[1]) + t[2]),
    st.tuples(st.sampled_from(sorted(audiosocket.KINDS)), st.binary(max_size=audiosocket.FRAME_BYTES * 2)).map(
        lambda t: audiosocket.frame(*t)),
)


@fuzz(500)
@given(data=frame_bytes, chunks=st.lists(st.integers(0, 50), max_size=6))
def test_audiosocket_any_bytes_are_a_frame_or_a_protocol_error(data, chunks):
    """Then end of stream. The only other outcome is IncompleteReadError: the peer hung up mid-frame,
    which the transport treats as a hang-up (transports/audiosocket.py)."""
    count()
    result, rest = asyncio.run(read_all(data, chunks, timeout=1.0))
    expected = expected_frame(data)
    if expected == "refused":
        assert isinstance(result, ProtocolError)
    elif expected == "short":
        assert isinstance(result, asyncio.IncompleteReadError)
    else:
        kind, payload = result
        assert (kind, payload) == expected and kind in audiosocket.KINDS
        assert len(payload) <= audiosocket.MAX_PAYLOAD
        assert rest == data[3 + len(payload):]  # exactly one frame consumed


@fuzz(100)
@given(kind=st.sampled_from(sorted(audiosocket.KINDS)), length=st.integers(audiosocket.MAX_PAYLOAD + 1, 0xFFFF),
       payload=st.binary(max_size=100))
def test_audiosocket_oversize_length_is_refused_without_waiting_for_the_payload(kind, length, payload):
    count()
    data = struct.pack(">BH", kind, length) + payload

    async def go():
        # No end of stream and a long timeout: a refusal must come from the header alone.
        return await asyncio.wait_for(read_all(data, [], timeout=30.0, eof=False), 5.0)

    result, rest = asyncio.run(go())
    assert isinstance(result, ProtocolError)
    assert rest == payload  # the oversize payload was not read into memory by read_frame


@fuzz(20)
@given(kind=st.sampled_from(sorted(audiosocket.KINDS)), length=st.integers(1, audiosocket.MAX_PAYLOAD),
       sent=st.integers(0, 50))
def test_audiosocket_header_that_lies_about_its_length_is_a_protocol_error(kind, length, sent):
    count()
    data = struct.pack(">BH", kind, length) + b"\x00" * min(sent, length - 1)
    result, _ = asyncio.run(read_all(data, [], timeout=0.02, eof=False))
    assert isinstance(result, ProtocolError)


@fuzz(300)
@given(frames=st.lists(st.tuples(st.sampled_from(sorted(audiosocket.KINDS)),
                                 st.binary(max_size=audiosocket.FRAME_BYTES * 2)), max_size=8),
       chunks=st.lists(st.integers(0, 400), max_size=8))
def test_audiosocket_frames_round_trip_in_a_stream(frames, chunks):
    count()
    data = b"".join(audiosocket.frame(kind, payload) for kind, payload in frames)

    async def go():
        reader = asyncio.StreamReader()
        position = 0
        for size in chunks:
            reader.feed_data(data[position:position + size])
            position += size
        reader.feed_data(data[position:])
        reader.feed_eof()
        got = [await audiosocket.read_frame(reader, 1.0) for _ in frames]
        assert reader.at_eof()
        return got

    assert asyncio.run(go()) == frames


@fuzz(300)
@given(payload=st.binary(max_size=40))
def test_audiosocket_uuid_is_a_uuid_or_a_protocol_error(payload):
    count()
    try:
        call_id = audiosocket.parse_uuid(payload)
    except ProtocolError:
        assert len(payload) != 16
        return
    assert uuid.UUID(call_id).bytes == payload
