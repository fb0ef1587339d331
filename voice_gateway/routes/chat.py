import re
import uuid
from typing import Any, Dict, List, Optional

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hotline.nlu.text import has_content
from voice_gateway.deps import PipelineDep

router = APIRouter(prefix="/v1", tags=["chat"])
BARE_INTENT = re.compile(r"/[a-z_]{1,40}")
EMPTY_PROMPT = "请输入您的问题，比如“手机激活不了”或“查一下订单”。"


class ChatIn(BaseModel):
    text: str = Field(..., max_length=5000)
    session_id: Optional[str] = Field(None, max_length=128, regex=r"^[A-Za-z0-9_.:\-]+$")


class ChatOut(BaseModel):
    session_id: str
    replies: List[str]
    intent: Optional[str]
    confidence: Optional[float]
    handoff: Optional[Dict[str, Any]]
    # Choices to show as buttons; send a button's payload back as the next message's text.
    buttons: List[Dict[str, str]] = []


def bare_intent_only(text: str) -> str:
    """A button payload (`/order_status`) goes to Rasa as an intent; `/intent{"entity": …}` typed by
    hand would set entities no extractor checked, so such text loses its leading slash and is read
    as words."""
    text = text.strip()
    if text.startswith("/") and not BARE_INTENT.fullmatch(text):
        return text.lstrip("/")
    return text


@router.post("/chat", response_model=ChatOut)
async def chat(message: ChatIn, pipeline: PipelineDep) -> ChatOut:
    session_id = message.session_id or f"chat-{uuid.uuid4().hex[:12]}"
    if not has_content(message.text):  # empty, punctuation-only or invisible (zero-width space)
        return ChatOut(session_id=session_id, replies=[EMPTY_PROMPT], intent=None, confidence=None, handoff=None)
    reply = await pipeline.text_turn(session_id, bare_intent_only(message.text), "chat")
    return ChatOut(session_id=session_id, replies=reply.texts, intent=reply.intent,
                   confidence=reply.confidence, handoff=reply.handoff, buttons=reply.buttons)
