"""Where a finished call goes next: Asterisk's dialplan asks after the AudioSocket ends."""
from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from voice_gateway.deps import EnginesDep

router = APIRouter(prefix="/v1/calls", tags=["telephony"])


@router.get("/{call_id}/transfer", response_class=PlainTextResponse,
            responses={204: {"description": "the bot did not transfer this call"}})
async def transfer_group(call_id: str, engines: EnginesDep) -> Response:
    """The skill group (orders, repairs, account, general) the call was handed to, as plain text;
    204 with an empty body if the bot did not transfer it (Asterisk's CURL() returns the body
    whatever the status, so "no transfer" must read as empty)."""
    group = engines.switchboard.transfer_group(call_id)
    if group is None:
        return Response(status_code=204)
    return PlainTextResponse(group)
