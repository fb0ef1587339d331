"""The chat widget: `GET /widget.js` is the one script a support site embeds (it draws the widget
in a shadow DOM and talks to this gateway); `GET /` is the gateway's own page, which embeds it."""
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from voice_gateway.deps import PipelineDep

router = APIRouter(tags=["widget"])
STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/", response_class=HTMLResponse)
async def widget_page() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))


@router.get("/widget.js", response_class=Response, responses={200: {"content": {"text/javascript": {}}}})
async def widget_script() -> Response:
    # Any site may load the script (a <script> tag is not subject to CORS); what it may then call
    # is decided by ALLOWED_ORIGINS. Cached briefly, so that a new release reaches pages soon.
    return Response((STATIC / "widget.js").read_text(encoding="utf-8"), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


@router.get("/v1/widget/config", responses={403: {"description": "this site is not in ALLOWED_ORIGINS"}})
async def widget_config(pipeline: PipelineDep) -> dict:
    """What the widget can offer. A plain GET, so that a refused site can still read the 403 and
    say why it is silent (a POST's preflight would fail without a readable answer)."""
    return {"speech": pipeline.stt is not None, "voice": pipeline.tts is not None}
