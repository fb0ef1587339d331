import uuid
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from hotline.core.text import has_content
from voice_gateway.choices import EMPTY_PROMPT, MAX_TEXT_CHARS
from voice_gateway.deps import PipelineDep, SettingsDep, rate_limit
from voice_gateway.history import current_session, is_widget_session, session_expiry_s, transcript

router = APIRouter(prefix="/v1", tags=["chat"])


class ChatIn(BaseModel):
    text: str = Field(..., max_length=MAX_TEXT_CHARS)
    session_id: Optional[str] = Field(None, max_length=128, regex=r"^[A-Za-z0-9_.:\-]+$")


class ChatOut(BaseModel):
    session_id: str
    replies: List[str]
    intent: Optional[str]
    confidence: Optional[float]
    handoff: Optional[Dict[str, Any]]
    # Choices to show as buttons; send a button's payload back as the next message's text (a
    # payload is obeyed only right after it was offered; typed slashes are read as words).
    buttons: List[Dict[str, str]] = []

    class Config:
        @staticmethod
        def schema_extra(schema: Dict[str, Any], model) -> None:
            # pydantic 1 leaves `null` out of Optional fields' schemas; the replies do send null.
            for name, field in model.__fields__.items():
                if field.allow_none and name in schema.get("properties", {}):
                    schema["properties"][name] = {"anyOf": [schema["properties"][name], {"type": "null"}]}


@router.post("/chat", response_model=ChatOut, dependencies=[Depends(rate_limit("chat"))],
             responses={429: {"description": "too many requests from this client"}})
async def chat(message: ChatIn, request: Request, pipeline: PipelineDep) -> ChatOut:
    session_id = message.session_id or f"chat-{uuid.uuid4().hex[:12]}"
    text = await pipeline.offered.public_text(session_id, message.text)  # a slash only for an offered button
    if not has_content(text):  # empty, punctuation-only or invisible (zero-width space)
        return ChatOut(session_id=session_id, replies=[EMPTY_PROMPT], intent=None, confidence=None, handoff=None)
    reply = await pipeline.text_turn(session_id, text, "chat", metadata=client_metadata(request))
    return ChatOut(session_id=session_id, replies=reply.texts, intent=reply.intent,
                   confidence=reply.confidence, handoff=reply.handoff, buttons=reply.buttons)


def client_metadata(request: Request) -> Dict[str, str]:
    """The client address, for the records' attempt counts (behind a proxy: uvicorn's
    --forwarded-allow-ips makes this the real client)."""
    return {"client": request.client.host} if request.client else {}


class HistoryMessage(BaseModel):
    # "from" is a Python keyword: the field is `sender` and travels as "from".
    sender: str = Field(..., alias="from", description="user or bot")
    text: str
    buttons: List[Dict[str, str]] = []

    class Config:
        allow_population_by_field_name = True


class HistoryOut(BaseModel):
    session_id: str
    messages: List[HistoryMessage]
    handoff: Optional[Dict[str, Any]]


class HistoryIn(BaseModel):
    session_id: str = Field(..., max_length=128)


@router.post("/chat/history", response_model=HistoryOut, response_model_by_alias=True,
             dependencies=[Depends(rate_limit("chat"))],
             responses={404: {"description": "not a widget conversation id"},
                        429: {"description": "too many requests from this client"},
                        503: {"description": "the conversation store cannot be read now"}})
async def chat_history(query: HistoryIn, pipeline: PipelineDep, settings: SettingsDep) -> HistoryOut:
    """The widget's current conversation (after a reload or on another page of the same site): its
    current Rasa session only, nothing once that has expired. Only ids the widget makes ("web-" +
    22 random characters) are read back; the id travels in the body, never in a logged URL."""
    if not is_widget_session(query.session_id):
        raise HTTPException(404, "no such conversation")
    events = await pipeline.bot.events(query.session_id)
    if events is None:
        raise HTTPException(503, "the conversation cannot be read now")
    expiry = session_expiry_s(settings.project_root / "bot" / "domain.yml")
    return HistoryOut(session_id=query.session_id, **transcript(current_session(events, expiry)))
