"""Twilio Media Streams transport (WebSocket): input events → PhoneCall; output as media/mark/clear."""
from __future__ import annotations

import itertools
import logging
from typing import Optional, Set

from starlette.websockets import WebSocket, WebSocketDisconnect

from voice_gateway import metrics
from voice_gateway.audio import mulaw_decode, mulaw_encode
from voice_gateway.serializers import ProtocolError
from voice_gateway.serializers import twilio as wire
from voice_gateway.switchboard import TwilioCallControl, transfer_twiml
from voice_gateway.transports.call import CallSetup, PhoneCall

logger = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 64_000


class TwilioOutput:
    def __init__(self, websocket: WebSocket, stream_sid: str, call_sid: str = "",
                 control: Optional[TwilioCallControl] = None) -> None:
        self.websocket, self.stream_sid = websocket, stream_sid
        self.call_sid, self.control = call_sid, control
        self.pending_marks: Set[str] = set()
        self._names = itertools.count(1)

    async def send_audio(self, pcm16_8k: bytes) -> None:
        mulaw = mulaw_encode(pcm16_8k)
        for start in range(0, len(mulaw), wire.FRAME_BYTES):
            frame = mulaw[start:start + wire.FRAME_BYTES]
            if len(frame) < wire.FRAME_BYTES:  # keep every frame 20 ms: pad with μ-law silence
                frame += b"\xff" * (wire.FRAME_BYTES - len(frame))
            await self.websocket.send_text(wire.media(self.stream_sid, frame))
        name = f"chunk-{next(self._names)}"
        self.pending_marks.add(name)
        await self.websocket.send_text(wire.mark(self.stream_sid, name))

    async def clear(self) -> None:
        if self.pending_marks:
            self.pending_marks.clear()
            await self.websocket.send_text(wire.clear(self.stream_sid))

    def playing(self) -> bool:
        return bool(self.pending_marks)

    def played(self, name: str) -> None:
        self.pending_marks.discard(name)

    async def transfer(self, group: str, target: str) -> None:
        """Redirect the live call to TwiML that queues or dials the group's target; Twilio then
        ends this media stream."""
        if self.control is None:
            logger.warning("twilio: no TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN: cannot transfer %s", self.call_sid)
            raise RuntimeError("Twilio REST credentials are not configured")
        await self.control.redirect(self.call_sid, transfer_twiml(target))

    async def end(self) -> None:
        """Close the media stream: with no TwiML after <Connect>, Twilio ends the call."""
        await self.websocket.close()


async def serve_media_stream(websocket: WebSocket, calls: CallSetup,
                             control: Optional[TwilioCallControl] = None) -> Optional[PhoneCall]:
    await websocket.accept()
    call: Optional[PhoneCall] = None
    output: Optional[TwilioOutput] = None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None or len(text) > MAX_MESSAGE_BYTES:
                metrics.ERRORS.labels("twilio", "bad_frame").inc()
                continue
            try:
                event = wire.parse(text)
            except ProtocolError as error:
                metrics.ERRORS.labels("twilio", "protocol").inc()
                logger.warning("twilio: %s", error)
                continue
            if isinstance(event, wire.Start):
                if call is not None:
                    continue  # a second start on the same socket is ignored
                if event.encoding != "audio/x-mulaw" or event.sample_rate != 8000:
                    metrics.ERRORS.labels("twilio", "media_format").inc()
                    await websocket.close(code=1003, reason="only audio/x-mulaw at 8000 Hz")
                    break
                output = TwilioOutput(websocket, event.stream_sid, event.call_sid, control)
                call = calls.new_call(event.call_sid, output, "twilio")
                call.caller = str(event.custom_parameters.get("From") or "")[:32] or None  # from our TwiML
                await call.start()
            elif isinstance(event, (wire.Media, wire.Dtmf, wire.Mark)) and call is None:
                metrics.ERRORS.labels("twilio", "before_start").inc()  # out of order: ignore
            elif isinstance(event, wire.Media):
                await call.on_audio(mulaw_decode(event.payload))
            elif isinstance(event, wire.Dtmf):
                await call.on_dtmf(event.digit)
            elif isinstance(event, wire.Mark):
                output.played(event.name)
            elif isinstance(event, wire.Stop):
                break
    except WebSocketDisconnect:
        pass
    finally:
        if call is not None:
            await call.hangup()
    return call
