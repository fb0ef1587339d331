"""Asterisk AudioSocket over TCP: 1-byte kind, 2-byte big-endian length, payload.

0x00 hang-up, 0x01 call UUID (16 bytes, first), 0x03 DTMF (one ASCII byte),
0x10 signed-linear 16-bit little-endian 8 kHz mono (320 bytes = 20 ms), 0xff error."""
from __future__ import annotations

import asyncio
import struct
import uuid
from typing import Tuple

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
