"""Replies for the ear: on the phone an answer is its short version (the domain's `channel: phone`
variant) ending with "需要我详细说说吗？"; a "yes" then tells the full text (the chat version)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

MORE_DETAIL = "需要我详细说说吗？"


def detailed_text(response: Text, domain: Dict[Text, Any]) -> Optional[Text]:
    """The full text of a response whose phone version offers details, else None."""
    variants = (domain.get("responses") or {}).get(response) or []
    offers = any(v.get("channel") == "phone" and str(v.get("text", "")).endswith(MORE_DETAIL) for v in variants)
    full = next((v.get("text") for v in variants if not v.get("channel") and v.get("text")), None)
    return full if offers else None


class ActionTellMore(Action):
    """A "yes" out of any other context: the details offered by the last answer, if it offered any."""

    def name(self) -> Text:
        return "action_tell_more"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        last = next((e for e in reversed(tracker.events) if e.get("event") == "bot"), None)
        response = ((last or {}).get("metadata") or {}).get("utter_action")
        full = detailed_text(response, domain) if response else None
        if full and (last or {}).get("text", "").endswith(MORE_DETAIL):
            dispatcher.utter_message(text=full)
        else:
            dispatcher.utter_message(response="utter_anything_else")
        return []
