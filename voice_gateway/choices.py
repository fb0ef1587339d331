"""What a public client may send as an intent (`/order_status`): only a payload of a button the
bot has just offered to that session. Anything else typed with a leading slash is read as words,
so nobody can trigger an intent or set an entity ("/order_status{…}", "/human_handoff") by hand.

What was offered is read from the conversation itself (Rasa's tracker), not from this gateway's
memory: with several gateways behind a load balancer, the button may be pressed on another one."""
from __future__ import annotations

from typing import Awaitable, Callable, FrozenSet

# A question, not a document: Rasa's featurisation grows faster than linearly with length (2000
# characters took seconds of both cores), so one long message must not stall everyone's turns.
MAX_TEXT_CHARS = 1000
# The answer to a message with nothing to read (empty, punctuation, emoji, zero-width spaces).
EMPTY_PROMPT = "请输入您的问题，比如“手机激活不了”或“查一下订单”。"


class OfferedChoices:
    def __init__(self, offered: Callable[[str], Awaitable[FrozenSet[str]]]) -> None:
        self._offered = offered  # sender → payloads of the buttons of the bot's last reply

    async def public_text(self, sender: str, text: str) -> str:
        text = text.strip()
        if text.startswith("/") and text in await self._offered(sender):
            return text
        return text.lstrip("/").strip()
