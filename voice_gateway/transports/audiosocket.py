"""Asterisk AudioSocket transport: a TCP server; each connection is one call, run by the shared
media-stream loop with the AudioSocket serializer and a 20 ms paced output."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Dict, Optional, Sequence, Tuple

from voice_gateway import metrics
from voice_gateway.carriers import LOOPBACK, Network, address_in
from voice_gateway.serializers import CallStarted
from voice_gateway.serializers import audiosocket as wire
from voice_gateway.transports.call import CallSetup, PhoneCall
from voice_gateway.transports.stream import MediaOutput, run_media_stream

logger = logging.getLogger(__name__)
FRAME_SECONDS = 0.02
# Connections allowed beyond MAX_CALLS: callers over the limit still need one to hear "all lines
# busy" (a few seconds each) before Asterisk takes them to the advisors.
SPARE_CONNECTIONS = 4


class AudioSocketConnection:
    """The TCP stream as a `Connection`: frames with `read_timeout` until the call has started,
    then a call that sends no frame for `idle_s` is hung up (Asterisk sends one every 20 ms)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 read_timeout: float, idle_s: float) -> None:
        self.reader, self.writer, self.read_timeout, self.idle_s = reader, writer, read_timeout, idle_s
        self.call_id = ""
        self.output: Optional[MediaOutput] = None

    async def receive(self) -> Optional[Tuple[int, bytes]]:
        if self.output is None:
            return await wire.read_frame(self.reader, self.read_timeout)
        try:
            return await wire.read_frame(self.reader, self.idle_s)
        except asyncio.TimeoutError:  # the line is dead
            metrics.ERRORS.labels("audiosocket", "idle").inc()
            logger.info("audiosocket call %s: no frame for %.0f s: hanging up", self.call_id, self.idle_s)
            self.output.close()  # stop the pacer first: the hang-up frame is the last one
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(self.output.end(), self.read_timeout)
            return None

    async def send(self, frame: bytes) -> None:
        self.writer.write(frame)
        await self.writer.drain()

    async def close(self, refused: Optional[str] = None) -> None:
        self.writer.close()  # the read loop sees the end of the stream and hangs up the call

    def output_for(self, serializer: wire.AudioSocketSerializer, started: CallStarted) -> MediaOutput:
        """Asterisk plays what it receives as it arrives, so frames are paced at 20 ms. A transfer
        hangs up the socket: the switchboard has recorded the group, and Asterisk goes on in the
        dialplan, which reads it and routes the caller (README, "Transfers")."""
        self.call_id = started.call_id
        self.output = MediaOutput(serializer, self, frame_seconds=FRAME_SECONDS)
        return self.output


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
        serializer = wire.AudioSocketSerializer()
        connection = AudioSocketConnection(reader, writer, self.read_timeout, self.idle_s)
        try:
            await run_media_stream(serializer, connection, self.calls_setup,
                                   lambda started: connection.output_for(serializer, started), on_call=self._remember,
                                   gone=(asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError))
        finally:
            writer.close()

    def _remember(self, call: PhoneCall) -> None:
        self.calls[call.call_id] = call
        while len(self.calls) > 200:
            self.calls.pop(next(iter(self.calls)))
