"""Twilio Media Streams transport (WebSocket): the shared media-stream loop with the Twilio
serializer; frames go out at once and Twilio's mark echoes tell when they have played."""
from __future__ import annotations

import logging
from typing import Optional

from starlette.websockets import WebSocket, WebSocketDisconnect

from voice_gateway.serializers import twilio as wire
from voice_gateway.switchboard import TwilioCallControl, transfer_twiml
from voice_gateway.transports.call import CallSetup, PhoneCall
from voice_gateway.transports.stream import MediaOutput, Transfer, WebSocketConnection, run_media_stream

logger = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 64_000


def twilio_transfer(control: Optional[TwilioCallControl], call_sid: str) -> Transfer:
    async def transfer(group: str, target: str) -> None:
        """Redirect the live call to TwiML that queues or dials the group's target; Twilio then
        ends this media stream."""
        if control is None:
            logger.warning("twilio: no TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN: cannot transfer %s", call_sid)
            raise RuntimeError("Twilio REST credentials are not configured")
        await control.redirect(call_sid, transfer_twiml(target))

    return transfer


async def serve_media_stream(websocket: WebSocket, calls: CallSetup,
                             control: Optional[TwilioCallControl] = None) -> Optional[PhoneCall]:
    """Closing the media stream (MediaOutput.end) ends the call: there is no TwiML after <Connect>."""
    await websocket.accept()
    serializer = wire.TwilioSerializer()
    connection = WebSocketConnection(websocket, serializer.name, MAX_MESSAGE_BYTES)
    return await run_media_stream(
        serializer, connection, calls,
        lambda started: MediaOutput(serializer, connection, transfer=twilio_transfer(control, started.call_id)),
        gone=(WebSocketDisconnect,))
