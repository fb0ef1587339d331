"""The FastAPI application: `create_app(settings)`; `python -m voice_gateway` serves it."""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from hotline.core.settings import Settings, get_settings
from voice_gateway import carriers
from voice_gateway.engines import load_engines
from voice_gateway.guards import BodySizeLimit, OriginGuard, RateLimits, parse_origins
from voice_gateway.prompts import SHUTTING_DOWN
from voice_gateway.routes import calls, chat, health, trainer, twilio, voice, widget
from voice_gateway.transports.audiosocket import SPARE_CONNECTIONS, AudioSocketServer
from voice_gateway.transports.call import CallSetup
from voice_gateway.turn_taking import turn_taking_from

logger = logging.getLogger("voice_gateway")


GOODBYE_LIMIT_S = 10.0  # the goodbye after the drain: then the line is hung up whatever plays


async def drain(app: FastAPI, timeout_s: float, notice_s: float = 0.0) -> None:
    """Shutting down without dropping calls: readiness fails (load balancers stop sending), no new
    call gets a line and AudioSocket stops accepting; for `notice_s` everything else is still
    served (a balancer notices a failed probe only at its next check); live calls get `timeout_s`
    to finish, then hear a goodbye and are hung up. Typed chat is served until the process exits."""
    app.state.draining = True
    switchboard = app.state.engines.switchboard
    switchboard.draining = True
    await app.state.audiosocket.stop_listening()
    logger.info("draining: %d live calls, up to %.0f s", switchboard.active, timeout_s)
    started = time.monotonic()
    while (switchboard.active or time.monotonic() - started < notice_s) and time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.1)
    if switchboard.active:
        logger.info("drain time is up: saying goodbye to %d calls", switchboard.active)
        calls = list(switchboard.calls)
        try:
            await asyncio.wait_for(asyncio.gather(*(call.end_with(SHUTTING_DOWN) for call in calls),
                                                  return_exceptions=True), GOODBYE_LIMIT_S)
        except asyncio.TimeoutError:  # the far end never confirmed playout: hang up now
            await asyncio.gather(*(call.output.end() for call in calls), return_exceptions=True)


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        app.state.draining = False
        app.state.engines = engines = load_engines(settings)
        app.state.calls = CallSetup(engines.pipeline, engines.switchboard, settings.endpoint_silence_ms,
                                    settings.speculate_after_ms, settings.media_timeout_s, settings.max_call_s,
                                    turn_taking_from(settings))
        app.state.audiosocket = AudioSocketServer(
            app.state.calls, settings.host, settings.audiosocket_port, settings.audiosocket_read_timeout,
            allowed_peers=carriers.parse_networks(settings.audiosocket_allowed_peers),
            max_connections=settings.max_calls + SPARE_CONNECTIONS, idle_s=settings.audiosocket_idle_s)
        await app.state.audiosocket.start()
        logger.info("AudioSocket listening on %s:%s", settings.host, app.state.audiosocket.port)
        carriers.log_checks(settings)
        yield
        await app.state.audiosocket.stop()
        await app.state.engines.bot.close()
        app.state.engines.pipeline.close()

    app = FastAPI(title="Apple 400 hotline voice gateway", version="0.1.0", lifespan=lifespan,
                  responses={400: {"description": "a body that cannot be parsed"},
                             413: {"description": "a body over MAX_REQUEST_BYTES"}})
    app.state.rate_limits = RateLimits(settings.rate_limit_storage,
                                       {"chat": settings.rate_limit_chat, "voice": settings.rate_limit_voice})
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    allowed_origins = parse_origins(settings.allowed_origins)
    app.add_middleware(OriginGuard, allowed=allowed_origins)
    # Outermost: answers the widget's preflight requests from the allowed sites.
    app.add_middleware(CORSMiddleware, allow_origins=sorted(allowed_origins), allow_methods=["GET", "POST"],
                       allow_headers=["Content-Type"], max_age=600)
    for module in (health, chat, voice, twilio, calls, widget, trainer):
        app.include_router(module.router)
    app.include_router(trainer.api)
    return app
