"""A conversation as the chat widget shows it, read back from Rasa's tracker: what the user wrote
(a pressed button as its title, not its `/intent` payload), what the bot said with its links and
buttons (only the last reply's buttons are still live), and the advisor handoff (case number)."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

# The widget makes its ids: "web-" and 22 characters of base64url (16 random bytes). Only such a
# conversation is read back: call SIDs, AudioSocket UUIDs and the gateway's own ids never are.
WIDGET_SESSION = re.compile(r"web-[A-Za-z0-9_-]{22,64}")


def is_widget_session(session_id: str) -> bool:
    return bool(WIDGET_SESSION.fullmatch(session_id or ""))


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
