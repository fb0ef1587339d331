"""FastAPI dependencies as `Annotated` aliases."""
from typing import Annotated, Callable

from fastapi import Depends, Request

from hotline.core.settings import Settings
from voice_gateway.engines import Engines
from voice_gateway.pipeline import VoicePipeline


def get_engines(request: Request) -> Engines:
    return request.app.state.engines


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pipeline(request: Request) -> VoicePipeline:
    return request.app.state.engines.pipeline


EnginesDep = Annotated[Engines, Depends(get_engines)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
PipelineDep = Annotated[VoicePipeline, Depends(get_pipeline)]


def rate_limit(name: str) -> Callable[[Request], None]:
    """A route dependency: the per-client limit `name` of RateLimits (voice_gateway/guards.py)."""
    def check(request: Request) -> None:
        request.app.state.rate_limits.check(request, name)

    return check
