"""Where a finished call goes next: Asterisk's dialplan asks after the AudioSocket ends."""
from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse

from voice_gateway.deps import EnginesDep

router = APIRouter(prefix="/v1/calls", tags=["telephony"])


@router.get("/{call_id}/transfer", response_class=PlainTextResponse)
async def transfer_group(call_id: str, engines: EnginesDep) -> str:
    """The skill group (orders, repairs, account, general) the call was handed to; 404 if the
    bot did not transfer it (the dialplan then hangs up)."""
    group = engines.switchboard.transfer_group(call_id)
    if group is None:
        raise HTTPException(404, "no transfer for this call")
    return group
