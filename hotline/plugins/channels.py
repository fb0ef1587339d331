"""A Rasa input channel for phone calls (`/webhooks/phone/webhook`, same JSON as REST).

Its own name lets the domain give phone versions of responses (`channel: phone`) and lets actions
ask `tracker.get_latest_input_channel()`: a caller hears "say yes or press 1" where a chat user
sees buttons. Rasa's REST channel always answers through an output channel named "collector", so
the webhook is restated here with an output channel named "phone"."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

PHONE = "phone"
logger = logging.getLogger(__name__)


class PhoneOutput(CollectingOutputChannel):
    @classmethod
    def name(cls) -> Text:
        return PHONE


class PhoneInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return PHONE

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        webhook = Blueprint("phone_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            collector = PhoneOutput()
            try:
                await on_new_message(UserMessage(self._extract_message(request), collector,
                                                 await self._extract_sender(request), input_channel=PHONE,
                                                 metadata=self.get_metadata(request)))
            except Exception:  # as Rasa's REST channel: answer with what was collected
                logger.exception("phone channel: message handling failed")
            return response.json(collector.messages)

        return webhook
