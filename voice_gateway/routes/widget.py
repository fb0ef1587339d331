from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["widget"])
PAGE = Path(__file__).resolve().parent.parent / "static" / "index.html"


@router.get("/", response_class=HTMLResponse)
async def widget() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))
