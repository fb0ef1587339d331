"""The trainer page: inbox, labelling, the latest evaluation report, and retraining.
The page itself holds no data; every /trainer/api call needs the trainer token."""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, List

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel
from ruamel.yaml import YAML

from hotline.trainer.inbox import current_inbox, label_item
from hotline.trainer.retrain import RetrainJob
from voice_gateway.deps import SettingsDep

PAGE = Path(__file__).resolve().parent.parent / "static" / "trainer.html"


def require_trainer(settings: SettingsDep, authorization: Annotated[str, Header()] = "") -> None:
    token = authorization.removeprefix("Bearer ").strip()
    if not token or not secrets.compare_digest(token, settings.resolved_trainer_token()):
        raise HTTPException(401, "trainer token required (Authorization: Bearer …)")


router = APIRouter(prefix="/trainer", tags=["trainer"])
class Problem(BaseModel):
    detail: str


def problems(*codes: int) -> dict:
    """OpenAPI entries for the errors a route answers with (`{"detail": …}`)."""
    return {code: {"model": Problem} for code in codes}


api = APIRouter(prefix="/trainer/api", tags=["trainer"], dependencies=[Depends(require_trainer)],
                responses=problems(401))


def retrain_job(request: Request) -> RetrainJob:
    state = request.app.state
    if not hasattr(state, "retrain_job"):
        state.retrain_job = RetrainJob(state.settings)
    return state.retrain_job


RetrainDep = Annotated[RetrainJob, Depends(retrain_job)]


class Label(BaseModel):
    intent: str


@router.get("", response_class=HTMLResponse)
async def trainer_page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@api.get("/intents")
async def intents(settings: SettingsDep) -> List[str]:
    return list(YAML(typ="safe").load((settings.project_root / "bot" / "domain.yml").read_text(encoding="utf-8"))["intents"])


@api.get("/inbox")
async def inbox(settings: SettingsDep) -> list:
    return [item.as_dict() for item in current_inbox(settings)]


@api.post("/inbox/{item_id}/label", responses=problems(404, 409))
async def label(item_id: str, body: Label, settings: SettingsDep) -> dict:
    report = label_item(settings, item_id, body.intent)
    if report is None:
        raise HTTPException(404, f"no inbox item {item_id}")
    if report.unknown:
        raise HTTPException(422, f"unknown intent {body.intent}; did you mean {report.unknown[body.intent]}?")
    if report.conflicts:
        raise HTTPException(409, f"already an example of {report.conflicts[0][2]}")
    return {"added": [t for _, t in report.added], "already_there": [t for _, t in report.duplicates]}


@api.get("/report", responses=problems(404))
async def report(settings: SettingsDep) -> dict:
    path = settings.var_dir / "reports" / "latest" / "report.json"
    if not path.exists():
        raise HTTPException(404, "no evaluation yet: retrain, or run `hotline eval nlu … --report var/reports/latest`")
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("predictions", None)
    return data


@api.get("/report/confusion.png", responses={200: {"content": {"image/png": {}}}, **problems(404)})
async def confusion(settings: SettingsDep) -> FileResponse:
    path = settings.var_dir / "reports" / "latest" / "confusion_matrix.png"
    if not path.exists():
        raise HTTPException(404, "no evaluation yet")
    return FileResponse(path, media_type="image/png")


@api.post("/retrain", status_code=202, responses=problems(409))
async def retrain(job: RetrainDep) -> dict:
    if not job.start():
        raise HTTPException(409, "a retraining is already running")
    return job.status()


@api.get("/retrain")
async def retrain_status(job: RetrainDep) -> dict:
    return job.status()
