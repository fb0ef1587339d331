"""Asterisk AudioSocket transport: a TCP server; each connection is one call."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Dict, Optional, Sequence

from voice_gateway import metrics
from voice_gateway.carriers import LOOPBACK, Network, address_in
from voice_gateway.serializers import ProtocolError
from voice_gateway.serializers import audiosocket as wire
from voice_gateway.transports.call import CallSetup, PhoneCall

logger = logging.getLogger(__name__)
FRAME_SECONDS = 0.02
# Connections allowed beyond MAX_CALLS: callers over the limit still need one to hear "all lines
# busy" (a few seconds each) before Asterisk takes them to the advisors.
SPARE_CONNECTIONS = 4


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
    """Only `allowed_peers` may connect (others are closed at once), at most `max_connections` at
    a time (counted from the TCP accept: a peer that never sends its UUID frees its slot after
    `read_timeout`); a call that sends no frame for `idle_s` is hung up."""

    def __init__(self, calls: CallSetup, host: str, port: int, read_timeout: float = 10.0,
                 allowed_peers: Sequence[Network] = LOOPBACK, max_connections: int = 4 + SPARE_CONNECTIONS,
                 idle_s: float = 10.0) -> None:
        self.calls_setup, self.host, self.port, self.read_timeout = calls, host, port, read_timeout
        self.allowed_peers, self.max_connections, self.idle_s = list(allowed_peers), max_connections, idle_s
        self.connections = 0
        self.server: Optional[asyncio.base_events.Server] = None
        self.calls: Dict[str, PhoneCall] = {}  # finished and live calls by UUID (bounded below)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """No new connection (a draining gateway); live calls go on."""
        if self.server:
            self.server.close()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else None
        if not address_in(host, self.allowed_peers):
            metrics.ERRORS.labels("audiosocket", "peer_refused").inc()
            logger.warning("audiosocket: refused %s (not in AUDIOSOCKET_ALLOWED_PEERS)", host)
            writer.close()
            return
        if self.connections >= self.max_connections:
            metrics.ERRORS.labels("audiosocket", "too_many_connections").inc()
            logger.warning("audiosocket: refused %s: %d connections open", host, self.connections)
            writer.close()
            return
        self.connections += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.connections -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                try:
                    kind, payload = await wire.read_frame(reader, self.idle_s)
                except asyncio.TimeoutError:  # Asterisk sends a frame every 20 ms: the line is dead
                    metrics.ERRORS.labels("audiosocket", "idle").inc()
                    logger.info("audiosocket call %s: no frame for %.0f s: hanging up", call_id, self.idle_s)
                    output.close()  # stop the pacer first: the hang-up frame is the last one
                    with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                        await asyncio.wait_for(output.end(), self.read_timeout)
                    break
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
