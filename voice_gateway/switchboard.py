"""What phone calls share: the line count (admission control) and transfers to human skill groups.

The source describes advisors organised in skill groups; the handoff action names the group from
the conversation's topic (actions/handoff.py). On Twilio the live call is redirected with Twilio's
REST API (`calls(sid).update(twiml=…)`) to <Enqueue> or <Dial> the group's target. On AudioSocket
the group is recorded for the call and the socket ends; Asterisk's dialplan reads it from
GET /v1/calls/{uuid}/transfer and routes (README, "Transfers")."""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Dict, Optional, Set

from voice_gateway import metrics

logger = logging.getLogger(__name__)

SKILL_GROUPS = ("orders", "repairs", "account", "general")


def transfer_twiml(target: str) -> str:
    """TwiML for a target: "queue:NAME" waits in a Twilio queue, anything else is dialled."""
    from twilio.twiml.voice_response import Dial, VoiceResponse

    response = VoiceResponse()
    if target.startswith("queue:"):
        response.enqueue(target.split(":", 1)[1])
    else:
        dial = Dial()
        if target.startswith("sip:"):
            dial.sip(target)
        else:
            dial.number(target)
        response.append(dial)
    return str(response)


class TwilioCallControl:
    """Twilio's REST API through the `twilio` library. `api_base` replaces https://api.twilio.com
    (a local stand-in in tests: a carrier's API is the one thing that cannot run here)."""

    def __init__(self, account_sid: str, auth_token: str, api_base: Optional[str] = None) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        class RedirectingHttpClient(TwilioHttpClient):
            def request(self, method, url, *args, **kwargs):
                if api_base:
                    url = url.replace("https://api.twilio.com", api_base.rstrip("/"))
                return super().request(method, url, *args, **kwargs)

        self.client = Client(account_sid, auth_token, http_client=RedirectingHttpClient(timeout=10))
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # it logs every URL (call SIDs)

    async def redirect(self, call_sid: str, twiml: str) -> None:
        await asyncio.to_thread(lambda: self.client.calls(call_sid).update(twiml=twiml))


class Switchboard:
    def __init__(self, max_calls: int, targets: Dict[str, str], twilio: Optional[TwilioCallControl] = None,
                 remembered: int = 1000) -> None:
        self.max_calls, self.targets, self.twilio = max_calls, targets, twilio
        self.calls: Set[object] = set()  # the calls holding a line (a shutdown drains them)
        self.draining = False  # shutting down: no new call gets a line
        self._groups: "OrderedDict[str, str]" = OrderedDict()
        self._remembered = remembered

    @property
    def active(self) -> int:
        return len(self.calls)

    def admit(self, transport: str, call: object) -> bool:
        """Take a line if one is free (none while draining)."""
        if self.draining or self.active >= self.max_calls:
            metrics.CALLS_REFUSED.labels(transport).inc()
            return False
        self.calls.add(call)
        return True

    def release(self, call: object) -> None:
        self.calls.discard(call)

    def target(self, group: str) -> str:
        return self.targets.get(group) or self.targets.get("general", "queue:general")

    def record_transfer(self, call_id: str, group: str, transport: str) -> None:
        self._groups[call_id] = group
        self._groups.move_to_end(call_id)
        while len(self._groups) > self._remembered:
            self._groups.popitem(last=False)
        metrics.TRANSFERS.labels(transport, group).inc()
        logger.info("call %s transferred to skill group %s", call_id, group)

    def transfer_group(self, call_id: str) -> Optional[str]:
        return self._groups.get(call_id)
