"""A conversation as the chat widget shows it, read back from Rasa's tracker: what the user wrote
(a pressed button as its title, not its `/intent` payload), what the bot said with its links and
buttons (only the last reply's buttons are still live), and the advisor handoff (case number)."""
from __future__ import annotations

import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

# The widget makes its ids: "web-" and 22 characters of base64url (16 random bytes). Only such a
# conversation is read back: call SIDs, AudioSocket UUIDs and the gateway's own ids never are.
WIDGET_SESSION = re.compile(r"web-[A-Za-z0-9_-]{22,64}")


def is_widget_session(session_id: str) -> bool:
    return bool(WIDGET_SESSION.fullmatch(session_id or ""))


@lru_cache(maxsize=4)
def session_expiry_s(domain_path: Path) -> float:
    """Rasa's `session_config.session_expiration_time` (minutes) in seconds: after that silence the
    next message starts a new session, and the widget shows nothing of the old one."""
    domain = yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}
    return 60.0 * float((domain.get("session_config") or {}).get("session_expiration_time", 60))


def current_session(events: List[Dict[str, Any]], expiry_s: float, now: Optional[float] = None) -> List[Dict[str, Any]]:
    """The events of the conversation's current session, none if it has expired: a shared computer
    or a later visitor of the page does not get an old conversation back."""
    starts = [i for i, e in enumerate(events) if e.get("event") == "session_started"]
    events = events[starts[-1]:] if starts else events
    last = max((float(e.get("timestamp") or 0) for e in events), default=0.0)
    return events if events and (now or time.time()) - last <= expiry_s else []


def transcript(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    messages: List[Dict[str, Any]] = []
    offered: Dict[str, str] = {}  # payload → title of the buttons shown before the user spoke
    handoff: Optional[Dict[str, Any]] = None
    for event in events:
        kind = event.get("event")
        if kind == "user" and event.get("text"):
            text = str(event["text"])
            messages.append({"from": "user", "text": offered.get(text, text)})
            offered = {}
        elif kind == "bot":
            data = event.get("data") or {}
            buttons = [{"title": str(b.get("title", "")), "payload": str(b["payload"])}
                       for b in data.get("buttons") or [] if isinstance(b, dict) and b.get("payload")]
            offered.update({b["payload"]: b["title"] for b in buttons})
            custom = data.get("custom")
            if isinstance(custom, dict) and custom.get("handoff"):
                handoff = {k: custom.get(k) for k in ("case_number", "skill_group")}
            if event.get("text"):
                messages.append({"from": "bot", "text": str(event["text"]), "buttons": buttons})
    # Only the bot's last reply (everything after the user last spoke) can still be answered with
    # a button; its buttons ride on its last message, as the live widget shows them.
    last_user = max((i for i, m in enumerate(messages) if m["from"] == "user"), default=-1)
    live = [b for m in messages[last_user + 1:] for b in m.get("buttons", [])]
    for message in messages:
        if message["from"] == "bot":
            message["buttons"] = []
    if live and messages and messages[-1]["from"] == "bot":
        messages[-1]["buttons"] = live
    return {"messages": messages, "handoff": handoff}
