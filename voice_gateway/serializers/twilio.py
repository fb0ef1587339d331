"""Twilio Media Streams: JSON text frames with an `event` field.

In: connected, start (streamSid, callSid, customParameters, mediaFormat), media (base64 μ-law
8 kHz, 20 ms = 160 bytes), dtmf, mark (echo of ours once the audio before it played), stop.
Out (bidirectional <Connect><Stream>): media, mark, clear (drop queued audio: barge-in).
`TwilioSerializer` is this format behind the shared `FrameSerializer` interface."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from voice_gateway import serializers as shared
from voice_gateway.audio import mulaw_decode, mulaw_encode
from voice_gateway.serializers import ProtocolError, Unsupported

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law


@dataclass(frozen=True)
class Connected:
    pass


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    custom_parameters: Dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000


@dataclass(frozen=True)
class Media:
    stream_sid: str
    payload: bytes
    timestamp_ms: int


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Stop:
    stream_sid: str


TwilioEvent = Union[Connected, Start, Media, Dtmf, Mark, Stop]


def parse(message: str) -> TwilioEvent:
    try:
        data = json.loads(message)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested deeper than json can decode
        raise ProtocolError("not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    event = data.get("event")
    try:
        sid = _text(data.get("streamSid"), "streamSid")
        if event == "connected":
            return Connected()
        if event == "start":
            start = data["start"]
            media_format = start.get("mediaFormat") or {}
            # Parameters are strings on the wire (<Parameter value="…">); anything else is made one.
            parameters = {str(k): str(v) for k, v in dict(start.get("customParameters") or {}).items()}
            return Start(stream_sid=_text(start.get("streamSid"), "streamSid") or sid,
                         call_sid=_text(start["callSid"], "callSid", required=True), custom_parameters=parameters,
                         encoding=_text(media_format.get("encoding"), "encoding") or "audio/x-mulaw",
                         sample_rate=int(media_format.get("sampleRate", 8000)))
        if event == "media":
            media = data["media"]
            return Media(stream_sid=sid, payload=base64.b64decode(media["payload"], validate=True),
                         timestamp_ms=int(media.get("timestamp") or 0))
        if event == "dtmf":
            digit = str(data["dtmf"]["digit"])
            if digit not in set("0123456789*#"):
                raise ProtocolError(f"bad DTMF digit {digit!r}")
            return Dtmf(stream_sid=sid, digit=digit)
        if event == "mark":
            return Mark(stream_sid=sid, name=str(data["mark"]["name"]))
        if event == "stop":
            return Stop(stream_sid=sid)
    # AttributeError: an object field that is not an object ("start": null has no .get); OverflowError:
    # int() of an infinite number (json reads 1e999 and Infinity) in sampleRate or timestamp.
    except (KeyError, TypeError, AttributeError, OverflowError, binascii.Error, ValueError) as error:
        if isinstance(error, ProtocolError):
            raise
        raise ProtocolError(f"malformed {event!r} message: {type(error).__name__}") from None
    raise ProtocolError(f"unknown event {event!r}")


def _text(value: object, name: str, required: bool = False) -> str:
    """A string field ("" when absent or null, unless required): ids that are numbers, lists or
    objects would reach the call as its id and in every message sent back."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string")
    return value


def media(stream_sid: str, mulaw: bytes) -> str:
    return json.dumps({"event": "media", "streamSid": stream_sid,
                       "media": {"payload": base64.b64encode(mulaw).decode("ascii")}})


def mark(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})


class TwilioSerializer:
    """One media stream: remembers the stream id of its (first) start for the frames it sends."""
    name = "twilio"
    skips_bad_messages = True  # one JSON message per WebSocket message

    def __init__(self) -> None:
        self.stream_sid, self.call_sid, self.started = "", "", False

    def parse(self, raw: str) -> shared.InputEvent:
        event = parse(raw)
        if isinstance(event, Start):
            if self.started:
                return shared.Ignored("second start")  # a second start on the same socket is ignored
            if event.encoding != "audio/x-mulaw" or event.sample_rate != 8000:
                raise Unsupported("only audio/x-mulaw at 8000 Hz")
            self.stream_sid, self.call_sid, self.started = event.stream_sid, event.call_sid, True
            caller = str(event.custom_parameters.get("From") or "")[:32] or None  # from our TwiML
            return shared.CallStarted(event.call_sid, caller, dict(event.custom_parameters))
        if isinstance(event, Media):
            return shared.Audio(mulaw_decode(event.payload))
        if isinstance(event, Dtmf):
            return shared.Dtmf(event.digit)
        if isinstance(event, Mark):
            return shared.Mark(event.name)
        if isinstance(event, Stop):
            return shared.Hangup()
        return shared.Ignored("connected")

    def audio(self, pcm16_8k: bytes) -> List[str]:
        mulaw, frames = mulaw_encode(pcm16_8k), []
        for start in range(0, len(mulaw), FRAME_BYTES):
            frame = mulaw[start:start + FRAME_BYTES]
            if len(frame) < FRAME_BYTES:  # keep every frame 20 ms: pad with μ-law silence
                frame += b"\xff" * (FRAME_BYTES - len(frame))
            frames.append(media(self.stream_sid, frame))
        return frames

    def clear(self) -> Optional[str]:
        return clear(self.stream_sid)

    def mark(self, name: str) -> Optional[str]:
        return mark(self.stream_sid, name)

    def hangup(self) -> Optional[str]:
        return None  # closing the stream ends the call (no TwiML after <Connect>)

    def error(self) -> Optional[str]:
        return None


def twiml_connect_stream(websocket_url: str, parameters: Dict[str, str]) -> str:
    """TwiML answering a call with a bidirectional media stream to our WebSocket."""
    from xml.sax.saxutils import quoteattr

    params = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in parameters.items())
    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
            f"<Stream url={quoteattr(websocket_url)}>{params}</Stream></Connect></Response>")
