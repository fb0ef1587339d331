from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voice_gateway.deps import EnginesDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, engines: EnginesDep, settings: SettingsDep) -> JSONResponse:
    draining = request.app.state.draining  # shutting down: send new calls elsewhere
    rasa = await engines.bot.healthy()
    stt_ok = engines.pipeline.stt is not None or not settings.load_speech
    body = {"ready": rasa and stt_ok and not draining, "rasa": rasa, **engines.status,
            "text_only": engines.pipeline.tts is None, "draining": draining}
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
