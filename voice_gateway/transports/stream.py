"""The media-stream loop every phone transport shares, and its output.

`run_media_stream` reads raw messages from a transport's `Connection`, parses them with a
`FrameSerializer` (voice_gateway/serializers) and drives a `PhoneCall`; `MediaOutput` is that
call's `PhoneOutput`, sending the serializer's frames at once (the far end buffers and echoes
marks: Twilio) or paced at 20 ms through a queue that barge-in empties (Asterisk AudioSocket)."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Protocol, Set, Tuple, Type

from voice_gateway import metrics
from voice_gateway.serializers import (Audio, CallStarted, Dtmf, Frame, FrameSerializer, Hangup, Mark,
                                       ProtocolError, Unsupported)
from voice_gateway.transports.call import CallSetup, PhoneCall

logger = logging.getLogger(__name__)
Transfer = Callable[[str, str], Awaitable[None]]


class Connection(Protocol):
    async def receive(self) -> Optional[Any]:
        """One raw message for the serializer; None once the peer has gone."""

    async def send(self, frame: Frame) -> None: ...

    async def close(self, refused: Optional[str] = None) -> None:
        """Close the connection; `refused`: the reason a call is refused (its media format)."""


class WebSocketConnection:
    """A WebSocket (Starlette) as a `Connection`: text or binary messages; others, and messages
    over `max_bytes`, are counted as bad frames and skipped."""

    def __init__(self, websocket, transport: str, max_bytes: int, binary: bool = False) -> None:
        self.websocket, self.transport, self.max_bytes, self.binary = websocket, transport, max_bytes, binary

    async def receive(self) -> Optional[Any]:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            data = message.get("bytes" if self.binary else "text")
            if data is None or len(data) > self.max_bytes:
                metrics.ERRORS.labels(self.transport, "bad_frame").inc()
                continue
            return data

    async def send(self, frame: Frame) -> None:
        if self.binary:
            await self.websocket.send_bytes(frame)
        else:
            await self.websocket.send_text(frame)

    async def close(self, refused: Optional[str] = None) -> None:
        if refused is None:
            await self.websocket.close()
        else:
            await self.websocket.close(code=1003, reason=refused)


class MediaOutput:
    """A call's `PhoneOutput` over any serializer. Without `frame_seconds` frames are sent as they
    come and the serializer's marks tell when the far end has played them (`played`); with it,
    frames are paced through a queue (the far end plays what it receives as it arrives), which
    barge-in empties. `transfer` moves the call (carrier-specific); by default it hangs up."""

    def __init__(self, serializer: FrameSerializer, connection: Connection,
                 frame_seconds: Optional[float] = None, transfer: Optional[Transfer] = None) -> None:
        self.serializer, self.connection = serializer, connection
        self.frame_seconds, self._transfer = frame_seconds, transfer
        self.pending_marks: Set[str] = set()
        self._names = itertools.count(1)
        # (frame, is 20 ms of audio, label played once it has gone): paced output only
        self.queue: "asyncio.Queue[Tuple[Optional[Frame], bool, Optional[str]]]" = asyncio.Queue()
        self._sending = False
        self._cleared = 0  # clear() calls so far: audio being sent when one comes stops there
        self.on_played: Optional[Callable[[str], None]] = None  # told each label the caller has heard
        self._labels: Dict[str, str] = {}  # mark name → label
        self.pacer = asyncio.ensure_future(self._pace()) if frame_seconds else None

    async def send_audio(self, pcm16_8k: bytes, label: Optional[str] = None) -> None:
        """Send audio; `label` is reported to `on_played` once the far end has played all of it."""
        cleared = self._cleared
        for frame in self.serializer.audio(pcm16_8k):
            if self._cleared != cleared:  # the caller interrupted: the rest is not sent
                return
            await self._send(frame, True)
        if self._cleared != cleared:
            return
        name = f"chunk-{next(self._names)}"
        mark = self.serializer.mark(name)
        if mark is not None:
            self.pending_marks.add(name)
            if label is not None:
                self._labels[name] = label
            await self._send(mark, False)
        elif label is not None and self.pacer is not None:
            self.queue.put_nowait((None, False, label))
        elif label is not None:
            self._report(label)

    async def clear(self) -> None:
        self._cleared += 1
        while not self.queue.empty():
            self.queue.get_nowait()
        self._labels.clear()  # marks echoed after a clear were dropped, not played
        if self.pending_marks:  # the far end still has audio of ours: tell it to drop it
            self.pending_marks.clear()
            frame = self.serializer.clear()
            if frame is not None:
                await self.connection.send(frame)

    def playing(self) -> bool:
        return bool(self.pending_marks) or not self.queue.empty() or self._sending

    def played(self, name: str) -> None:
        self.pending_marks.discard(name)
        label = self._labels.pop(name, None)
        if label is not None:
            self._report(label)

    def _report(self, label: str) -> None:
        if self.on_played is not None:
            self.on_played(label)

    async def transfer(self, group: str, target: str) -> None:
        if self._transfer is None:
            await self.end()
        else:
            await self._transfer(group, target)

    async def end(self) -> None:
        frame = self.serializer.hangup()
        if frame is not None:
            await self.connection.send(frame)
        await self.connection.close()

    def close(self) -> None:
        """Stop pacing (the call is over, or the hang-up frame must be the last one)."""
        if self.pacer is not None:
            self.pacer.cancel()

    async def _send(self, frame: Frame, audio: bool) -> None:
        if self.pacer is None:
            await self.connection.send(frame)
        else:
            self.queue.put_nowait((frame, audio, None))

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            frame, audio, label = await self.queue.get()
            self._sending = True
            now = loop.time()
            next_at = max(next_at, now)
            if frame is None:  # a label: the audio before it has been sent in real time
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                self._report(label)
            else:
                if audio and next_at > now:
                    await asyncio.sleep(next_at - now)
                await self.connection.send(frame)
                if audio:
                    next_at += self.frame_seconds
            self._sending = not self.queue.empty()


async def run_media_stream(serializer: FrameSerializer, connection: Connection, calls: CallSetup,
                           make_output: Callable[[CallStarted], MediaOutput],
                           on_call: Optional[Callable[[PhoneCall], None]] = None,
                           gone: Tuple[Type[BaseException], ...] = (ConnectionError,)) -> Optional[PhoneCall]:
    """One call over one connection, until the peer hangs up or goes (`gone`: the exceptions that
    mean the connection is lost). Malformed messages are counted ("protocol"); audio, keys and
    marks before the start are counted ("before_start") and ignored; the call is hung up at the end."""
    call: Optional[PhoneCall] = None
    output: Optional[MediaOutput] = None
    name = serializer.name
    try:
        while True:
            try:
                raw = await connection.receive()
                if raw is None:
                    break
                event = serializer.parse(raw)
            except Unsupported as error:
                metrics.ERRORS.labels(name, "media_format").inc()
                await connection.close(refused=str(error))
                break
            except ProtocolError as error:
                metrics.ERRORS.labels(name, "protocol").inc()
                logger.warning("%s: %s", name, error)
                if serializer.skips_bad_messages:
                    continue
                frame = serializer.error()
                if frame is not None:
                    with contextlib.suppress(ConnectionError):
                        await connection.send(frame)
                break
            if isinstance(event, CallStarted):
                if call is not None:
                    continue
                output = make_output(event)
                call = calls.new_call(event.call_id, output, name)
                call.caller = event.caller
                if on_call is not None:
                    on_call(call)
                await call.start()
            elif isinstance(event, (Audio, Dtmf, Mark)) and call is None:
                metrics.ERRORS.labels(name, "before_start").inc()  # out of order: ignore
            elif isinstance(event, Audio):
                await call.on_audio(event.pcm16_8k)
            elif isinstance(event, Dtmf):
                await call.on_dtmf(event.digit)
            elif isinstance(event, Mark):
                output.played(event.name)
            elif isinstance(event, Hangup):
                break
    except gone:
        pass
    finally:
        if call is not None:
            await call.hangup()
        if output is not None:
            output.close()
    return call
