"""What a public client may send as an intent (`/order_status`): only a payload of a button the
bot has just offered to that session. Anything else typed with a leading slash is read as words,
so nobody can trigger an intent or set an entity ("/order_status{…}", "/human_handoff") by hand."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, FrozenSet, Iterable

MAX_SESSIONS = 10_000
# A question, not a document: Rasa's featurisation grows faster than linearly with length (2000
# characters took seconds of both cores), so one long message must not stall everyone's turns.
MAX_TEXT_CHARS = 1000
# The answer to a message with nothing to read (empty, punctuation, emoji, zero-width spaces).
EMPTY_PROMPT = "请输入您的问题，比如“手机激活不了”或“查一下订单”。"


class OfferedChoices:
    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._offered: "OrderedDict[str, FrozenSet[str]]" = OrderedDict()
        self.max_sessions = max_sessions

    def remember(self, sender: str, buttons: Iterable[Dict[str, str]]) -> None:
        self._offered[sender] = frozenset(b["payload"] for b in buttons if b.get("payload"))
        self._offered.move_to_end(sender)
        while len(self._offered) > self.max_sessions:
            self._offered.popitem(last=False)

    def public_text(self, sender: str, text: str) -> str:
        text = text.strip()
        if text.startswith("/") and text in self._offered.get(sender, frozenset()):
            return text
        return text.lstrip("/").strip()
