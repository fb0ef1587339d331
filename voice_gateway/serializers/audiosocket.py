"""Asterisk AudioSocket over TCP: 1-byte kind, 2-byte big-endian length, payload.

0x00 hang-up, 0x01 call UUID (16 bytes, first), 0x03 DTMF (one ASCII byte),
0x10 signed-linear 16-bit little-endian 8 kHz mono (320 bytes = 20 ms), 0xff error.
`read_frame` cuts the TCP stream into frames; `AudioSocketSerializer` is the format behind the
shared `FrameSerializer` interface (its raw message: one `(kind, payload)` from `read_frame`)."""
from __future__ import annotations

import asyncio
import struct
import uuid
from typing import List, Optional, Tuple

from voice_gateway import serializers as shared
from voice_gateway.serializers import ProtocolError

HANGUP, UUID, DTMF, AUDIO, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
KINDS = {HANGUP, UUID, DTMF, AUDIO, ERROR}
FRAME_BYTES = 320
MAX_PAYLOAD = 8000  # 0.5 s of audio: anything bigger is not a real AudioSocket peer


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, timeout: float) -> Tuple[int, bytes]:
    """One frame; ProtocolError on an unknown kind, an oversize length, or a payload that does
    not arrive within `timeout` (a header that lies about its length)."""
    header = await asyncio.wait_for(reader.readexactly(3), timeout)
    kind, length = struct.unpack(">BH", header)
    if kind not in KINDS:
        raise ProtocolError(f"unknown frame kind 0x{kind:02x}")
    if length > MAX_PAYLOAD:
        raise ProtocolError(f"frame length {length} exceeds {MAX_PAYLOAD}")
    try:
        payload = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    except asyncio.TimeoutError:
        raise ProtocolError(f"payload of {length} bytes did not arrive") from None
    return kind, payload


def parse_uuid(payload: bytes) -> str:
    if len(payload) != 16:
        raise ProtocolError("UUID frame must carry 16 bytes")
    return str(uuid.UUID(bytes=payload))


class AudioSocketSerializer:
    """One connection: the UUID frame first, then audio, keys and the hang-up."""
    name = "audiosocket"
    skips_bad_messages = False  # a byte stream: after a bad frame the next one cannot be found

    def __init__(self) -> None:
        self.started = False

    def parse(self, raw: Tuple[int, bytes]) -> shared.InputEvent:
        kind, payload = raw
        if not self.started:
            if kind != UUID:
                raise ProtocolError("the first frame must be the call UUID")
            call_id = parse_uuid(payload)
            self.started = True
            return shared.CallStarted(call_id)
        if kind == AUDIO:
            return shared.Audio(payload)
        if kind == DTMF and len(payload) == 1 and chr(payload[0]) in "0123456789*#":
            return shared.Dtmf(chr(payload[0]))
        if kind in (HANGUP, ERROR):
            return shared.Hangup()
        return shared.Ignored("not a key" if kind == DTMF else "second UUID")

    def audio(self, pcm16_8k: bytes) -> List[bytes]:
        frames = []
        for start in range(0, len(pcm16_8k), FRAME_BYTES):
            chunk = pcm16_8k[start:start + FRAME_BYTES]
            frames.append(frame(AUDIO, chunk + b"\x00" * (FRAME_BYTES - len(chunk))))
        return frames

    def clear(self) -> Optional[bytes]:
        return None  # nothing on the wire: the paced output drops its queue

    def mark(self, name: str) -> Optional[bytes]:
        return None

    def hangup(self) -> Optional[bytes]:
        return frame(HANGUP, b"")

    def error(self) -> Optional[bytes]:
        return frame(ERROR, b"\x00")
