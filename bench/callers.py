"""Simulated phone lines for benchmarks and tests: a Twilio Media Streams caller (WebSocket) and
an Asterisk AudioSocket caller (TCP), both sending 20 ms frames in real time, silence included,
as the carriers do, and recording when the bot's audio would be heard.

Twilio buffers what it is sent and plays it in real time: `TwilioLine` keeps that play-out
clock, echoes each mark when the audio before it has played and, on "clear", drops what was
buffered and echoes the pending marks at once (as Twilio documents). Asterisk plays AudioSocket
frames as they arrive: their arrival is when they are heard."""
from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import uuid
from typing import List, Optional, Tuple

import websockets

from voice_gateway.audio import mulaw_encode

FRAME_S = 0.02
MULAW_SILENCE = b"\xff" * 160
PCM_SILENCE = b"\x00" * 320
HANGUP, UUID, DTMF, AUDIO = 0x00, 0x01, 0x03, 0x10


class PhoneLine:
    """What both lines share: a script of frames to send, and the bot's audio as heard."""

    def __init__(self) -> None:
        self.script: List[bytes] = []  # 8 kHz 16-bit PCM frames to send; silence when empty
        self.heard: List[Tuple[float, float]] = []  # (start, end) of each 20 ms the caller heard
        self.cleared_at: List[float] = []
        self.closed_at: Optional[float] = None
        self.sent = 0

    # --- what the caller does -----------------------------------------------------------------
    def say(self, pcm16_8k: bytes) -> float:
        """Queue speech after what is queued; returns when its first frame will go (perf_counter)."""
        frames = [pcm16_8k[i:i + 320].ljust(320, b"\x00") for i in range(0, len(pcm16_8k), 320)]
        ahead = len(self.script)
        self.script.extend(frames)
        return time.perf_counter() + ahead * FRAME_S

    async def said(self, pcm16_8k: bytes) -> float:
        """Speak and wait until the last frame has gone; returns when the first frame went."""
        first = self.say(pcm16_8k)
        while self.script and self.closed_at is None:
            await asyncio.sleep(0.005)
        return first

    async def idle(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    # --- what the caller heard ----------------------------------------------------------------
    def audible(self, start: float, end: float = float("inf")) -> List[Tuple[float, float]]:
        return [(a, b) for a, b in self.heard if b > start and a < end]

    def playing_at(self, moment: float) -> bool:
        return any(a <= moment < b for a, b in self.heard)

    def stopped_after(self, moment: float, gap: float = 0.1) -> Optional[float]:
        """When the audio playing at `moment` stopped: the end of its last frame before a gap."""
        spans = [s for s in self.heard if s[1] > moment]
        if not spans:
            return None
        end = spans[0][1]
        for a, b in spans[1:]:
            if a - end > gap:
                break
            end = max(end, b)
        return end

    def next_audio_after(self, moment: float) -> Optional[float]:
        later = [a for a, _ in self.heard if a >= moment]
        return min(later) if later else None

    def silent_since(self) -> float:
        return max((b for _, b in self.heard), default=0.0)


class TwilioLine(PhoneLine):
    def __init__(self, url: str, headers: Optional[dict] = None) -> None:
        super().__init__()
        self.url, self.headers = url, headers or {}
        self.stream_sid, self.call_sid = "MZ" + uuid.uuid4().hex, "CA" + uuid.uuid4().hex
        self.playing_until = 0.0
        self.pending: List[Tuple[float, str]] = []  # marks waiting for their audio to play

    async def __aenter__(self) -> "TwilioLine":
        self.ws = await websockets.connect(self.url, max_size=None, extra_headers=self.headers)
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self.ws.send(json.dumps({"event": "start", "streamSid": self.stream_sid, "start": {
            "streamSid": self.stream_sid, "callSid": self.call_sid, "tracks": ["inbound"],
            "customParameters": {"From": "+8613800000000"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        self.tasks = [asyncio.ensure_future(self._receive()), asyncio.ensure_future(self._send())]
        return self

    async def __aexit__(self, *exc) -> None:
        if self.closed_at is None:
            try:
                await self.ws.send(json.dumps({"event": "stop", "streamSid": self.stream_sid}))
            except websockets.ConnectionClosed:
                pass
            self.closed_at = self.closed_at or time.perf_counter()
        for task in self.tasks:
            task.cancel()
        await self.ws.close()

    @property
    def call_id(self) -> str:
        return self.call_sid

    async def key(self, digit: str) -> None:
        await self.ws.send(json.dumps({"event": "dtmf", "streamSid": self.stream_sid,
                                       "dtmf": {"track": "inbound_track", "digit": digit}}))

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                data = json.loads(message)
                now = time.perf_counter()
                if data["event"] == "media":
                    start = max(self.playing_until, now)
                    self.playing_until = start + FRAME_S
                    self.heard.append((start, self.playing_until))
                elif data["event"] == "mark":
                    self.pending.append((self.playing_until, data["mark"]["name"]))
                elif data["event"] == "clear":
                    self.cleared_at.append(now)
                    self.heard = [(a, min(b, now)) for a, b in self.heard if a < now]
                    self.playing_until = now
                    for _, name in self.pending:
                        await self._echo(name)
                    self.pending = []
                self._echo_played(now)
        except websockets.ConnectionClosed:
            pass
        self.closed_at = self.closed_at or time.perf_counter()

    def _echo_played(self, now: float) -> None:
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for _, name in due:
            asyncio.ensure_future(self._echo(name))

    async def _echo(self, name: str) -> None:
        try:
            await self.ws.send(json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}))
        except websockets.ConnectionClosed:
            pass

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while self.closed_at is None:
            frame = mulaw_encode(self.script.pop(0)) if self.script else MULAW_SILENCE
            try:
                await self.ws.send(json.dumps({"event": "media", "streamSid": self.stream_sid,
                                               "media": {"payload": base64.b64encode(frame).decode()}}))
            except websockets.ConnectionClosed:
                self.closed_at = self.closed_at or time.perf_counter()
                return
            self.sent += 1
            self._echo_played(time.perf_counter())
            next_at += FRAME_S
            await asyncio.sleep(max(0.0, next_at - loop.time()))


class AudioSocketLine(PhoneLine):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host, self.port = host, port
        self.uuid = uuid.uuid4()
        self.hung_up_by_bot = False

    @property
    def call_id(self) -> str:
        return str(self.uuid)

    async def __aenter__(self) -> "AudioSocketLine":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(struct.pack(">BH", UUID, 16) + self.uuid.bytes)
        await self.writer.drain()
        self.tasks = [asyncio.ensure_future(self._receive()), asyncio.ensure_future(self._send())]
        return self

    async def __aexit__(self, *exc) -> None:
        if self.closed_at is None:
            try:
                self.writer.write(struct.pack(">BH", HANGUP, 0))
                await self.writer.drain()
            except ConnectionError:
                pass
            self.closed_at = time.perf_counter()
        for task in self.tasks:
            task.cancel()
        self.writer.close()

    async def key(self, digit: str) -> None:
        self.writer.write(struct.pack(">BH", DTMF, 1) + digit.encode())
        await self.writer.drain()

    async def _receive(self) -> None:
        try:
            while True:
                kind, length = struct.unpack(">BH", await self.reader.readexactly(3))
                if length:
                    await self.reader.readexactly(length)
                now = time.perf_counter()
                if kind == AUDIO:
                    self.heard.append((now, now + FRAME_S))
                elif kind == HANGUP:
                    self.hung_up_by_bot = True
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.closed_at = self.closed_at or time.perf_counter()

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while self.closed_at is None:
            frame = self.script.pop(0) if self.script else PCM_SILENCE
            try:
                self.writer.write(struct.pack(">BH", AUDIO, len(frame)) + frame)
                await self.writer.drain()
            except ConnectionError:
                self.closed_at = self.closed_at or time.perf_counter()
                return
            self.sent += 1
            next_at += FRAME_S
            await asyncio.sleep(max(0.0, next_at - loop.time()))
