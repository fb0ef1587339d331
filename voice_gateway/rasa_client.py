"""The one place that talks to Rasa: its REST channel, or the phone channel for calls (sender id =
call or session id, so one call is one Rasa conversation) and its token-protected /model/parse for the intent of a transcript."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional

import aiohttp

logger = logging.getLogger(__name__)

RECENT_ANSWER_S = 5.0  # a turn answered this recently proves Rasa is up: no status request
APOLOGY = "抱歉，系统暂时出了点问题，我没能处理您的请求。请稍后再试，或者说“转人工”，由顾问为您服务。"


@dataclass
class BotReply:
    texts: List[str]
    intent: Optional[str] = None
    confidence: Optional[float] = None
    custom: List[Dict[str, Any]] = field(default_factory=list)
    error: Optional[str] = None
    # Choices offered with the reply ({"title", "payload": "/intent"}): widget buttons, phone keys.
    buttons: List[Dict[str, str]] = field(default_factory=list)
    requested_slot: Optional[str] = None  # the form slot the reply asks for (a number: longer endpoint)

    @property
    def handoff(self) -> Optional[Dict[str, Any]]:
        return next((c for c in self.custom if c.get("handoff")), None)


class RasaClient:
    def __init__(self, rasa_url: str, token: str, timeout: float = 5.0) -> None:
        self.rasa_url, self.token = rasa_url.rstrip("/"), token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None
        self._last_answer = float("-inf")  # when Rasa last answered a turn (monotonic)

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def healthy(self) -> bool:
        """Rasa answered a turn in the last few seconds, or answers its status now. A readiness
        probe must not queue behind the turns it is meant to protect: under load a status request
        waits its turn, the probe times out, and every gateway is taken out at once (measured:
        bench/chat_latency.py --replicas 2 answered 503 to most turns)."""
        if time.monotonic() - self._last_answer < RECENT_ANSWER_S:
            return True
        try:
            session = await self.session()
            async with session.get(f"{self.rasa_url}/status", params={"token": self.token},
                                   timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def turn(self, sender: str, text: str, channel: str = "rest",
                   metadata: Optional[Dict[str, str]] = None) -> BotReply:
        """Send one user message (channel "phone" for calls: phone versions of the responses);
        on any Rasa failure the caller still gets a spoken apology."""
        session = await self.session()
        try:
            async with session.post(f"{self.rasa_url}/webhooks/{channel}/webhook",
                                    json={"sender": sender, "message": text, "metadata": metadata or {}}) as response:
                response.raise_for_status()
                messages = await response.json()
                self._last_answer = time.monotonic()
            intent, confidence, requested_slot = await self._latest_intent(session, sender)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            logger.warning("rasa unavailable for %s: %s", sender, type(error).__name__)
            return BotReply([APOLOGY], error=type(error).__name__)
        texts = [m["text"] for m in messages if isinstance(m, dict) and m.get("text")]
        custom = [m["custom"] for m in messages if isinstance(m, dict) and isinstance(m.get("custom"), dict)]
        if not texts and not custom:
            # Every turn of this bot says something; nothing means an action failed (Rasa still
            # answers 200 when the action server is down or too slow).
            logger.warning("rasa answered %s with no message: an action failed", sender)
            return BotReply([APOLOGY], intent, confidence, error="empty_reply", requested_slot=requested_slot)
        buttons = [{"title": str(b.get("title", "")), "payload": str(b["payload"])}
                   for m in messages for b in (m.get("buttons") or []) if b.get("payload")]
        return BotReply(texts, intent, confidence, custom, buttons=buttons, requested_slot=requested_slot)

    async def events(self, sender: str) -> Optional[List[Dict[str, Any]]]:
        """The conversation's events since its last restart (None if Rasa cannot say)."""
        try:
            session = await self.session()
            async with session.get(f"{self.rasa_url}/conversations/{sender}/tracker",
                                   params={"token": self.token, "include_events": "AFTER_RESTART"}) as response:
                if response.status != 200:
                    return None
                return (await response.json()).get("events") or []
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None

    async def offered_payloads(self, sender: str) -> FrozenSet[str]:
        """Payloads of the buttons the bot offered since the user last spoke (none if Rasa cannot say)."""
        events = await self.events(sender) or []
        payloads = set()
        for event in reversed(events):
            if event.get("event") == "user":
                break
            if event.get("event") == "bot":
                payloads.update(str(b["payload"]) for b in (event.get("data") or {}).get("buttons") or []
                                if isinstance(b, dict) and b.get("payload"))
        return frozenset(payloads)

    async def _latest_intent(self, session: aiohttp.ClientSession, sender: str):
        async with session.get(f"{self.rasa_url}/conversations/{sender}/tracker",
                               params={"token": self.token, "include_events": "NONE"}) as response:
            if response.status != 200:
                return None, None, None
            state = await response.json()
        intent = (state.get("latest_message") or {}).get("intent") or {}
        requested = (state.get("slots") or {}).get("requested_slot")
        return intent.get("name"), intent.get("confidence"), requested if isinstance(requested, str) else None
