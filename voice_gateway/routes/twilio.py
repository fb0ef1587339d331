from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import Response

from voice_gateway.carriers import verify_twilio, websocket_url
from voice_gateway.deps import SettingsDep
from voice_gateway.serializers.twilio import twiml_connect_stream
from voice_gateway.transports.twilio import serve_media_stream

# Every route here answers Twilio only: signed requests (README, "Verifying carriers").
router = APIRouter(prefix="/twilio", tags=["telephony"], dependencies=[Depends(verify_twilio)])


@router.post("/voice", response_class=Response,
             responses={200: {"content": {"application/xml": {}}}, 403: {"description": "not signed by Twilio"}})
async def incoming_call(request: Request, settings: SettingsDep) -> Response:
    """Twilio's voice webhook: answer with a bidirectional media stream. Also while this gateway
    drains: the stream's URL is the public one, which the load balancer sends to a ready gateway."""
    form = await request.form()
    base = settings.public_url or str(request.base_url)
    ws_url = websocket_url(base.rstrip("/") + "/twilio/media-stream")
    params = {k: str(form[k]) for k in ("From", "CallSid") if k in form}
    return Response(twiml_connect_stream(ws_url, params), media_type="application/xml")


@router.websocket("/media-stream")
async def media_stream(websocket: WebSocket) -> None:
    state = websocket.app.state
    await serve_media_stream(websocket, state.calls, state.engines.switchboard.twilio)
