"""Asterisk AudioSocket transport: a TCP server; each connection is one call."""
from __future__ import annotations

import asyncio
import logging
from typing import Dict, Optional

from voice_gateway import metrics
from voice_gateway.serializers import ProtocolError
from voice_gateway.serializers import audiosocket as wire
from voice_gateway.transports.call import CallSetup, PhoneCall

logger = logging.getLogger(__name__)
FRAME_SECONDS = 0.02


class AudioSocketOutput:
    """Asterisk plays what it receives as it arrives, so frames are paced at 20 ms."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.queue: "asyncio.Queue[bytes]" = asyncio.Queue()
        self.pacer = asyncio.ensure_future(self._pace())
        self._sending = False

    async def send_audio(self, pcm16_8k: bytes) -> None:
        for start in range(0, len(pcm16_8k), wire.FRAME_BYTES):
            frame = pcm16_8k[start:start + wire.FRAME_BYTES]
            self.queue.put_nowait(frame + b"\x00" * (wire.FRAME_BYTES - len(frame)))

    async def clear(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    def playing(self) -> bool:
        return not self.queue.empty() or self._sending

    async def transfer(self, group: str, target: str) -> None:
        """The switchboard has recorded the group; hang up the socket so that Asterisk goes on in
        the dialplan, which reads the group and routes the caller (README, "Transfers")."""
        await self.end()

    async def end(self) -> None:
        self.writer.write(wire.frame(wire.HANGUP, b""))
        await self.writer.drain()
        self.writer.close()  # the read loop sees the end of the stream and hangs up the call

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            frame = await self.queue.get()
            self._sending = True
            now = loop.time()
            next_at = max(next_at, now)
            if next_at > now:
                await asyncio.sleep(next_at - now)
            self.writer.write(wire.frame(wire.AUDIO, frame))
            await self.writer.drain()
            next_at += FRAME_SECONDS
            self._sending = not self.queue.empty()

    def close(self) -> None:
        self.pacer.cancel()


class AudioSocketServer:
    def __init__(self, calls: CallSetup, host: str, port: int, read_timeout: float = 10.0) -> None:
        self.calls_setup, self.host, self.port, self.read_timeout = calls, host, port, read_timeout
        self.server: Optional[asyncio.base_events.Server] = None
        self.calls: Dict[str, PhoneCall] = {}  # finished and live calls by UUID (bounded below)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        call: Optional[PhoneCall] = None
        output: Optional[AudioSocketOutput] = None
        try:
            kind, payload = await wire.read_frame(reader, self.read_timeout)
            if kind != wire.UUID:
                raise ProtocolError("the first frame must be the call UUID")
            call_id = wire.parse_uuid(payload)
            output = AudioSocketOutput(writer)
            call = self.calls_setup.new_call(call_id, output, "audiosocket")
            self.calls[call_id] = call
            while len(self.calls) > 200:
                self.calls.pop(next(iter(self.calls)))
            await call.start()
            while True:
                kind, payload = await wire.read_frame(reader, self.read_timeout * 6)
                if kind == wire.AUDIO:
                    await call.on_audio(payload)
                elif kind == wire.DTMF and len(payload) == 1 and chr(payload[0]) in "0123456789*#":
                    await call.on_dtmf(chr(payload[0]))
                elif kind in (wire.HANGUP, wire.ERROR):
                    break
        except ProtocolError as error:
            metrics.ERRORS.labels("audiosocket", "protocol").inc()
            logger.warning("audiosocket: %s", error)
            try:
                writer.write(wire.frame(wire.ERROR, b"\x00"))
                await writer.drain()
            except ConnectionError:
                pass
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            if call is not None:
                await call.hangup()
            if output is not None:
                output.close()
            writer.close()
