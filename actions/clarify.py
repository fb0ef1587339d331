"""When the bot is unsure what a caller wants: confirm the likeliest topic, then offer the next
two, then the keypad menu — instead of acting on a guess or asking to "say it again".

The NLU FallbackClassifier marks a turn `nlu_fallback` below the confidence threshold chosen on
the dev set (README, "NLU accuracy"); its intent ranking still holds the classifier's candidates.
Every question carries buttons whose payloads are intents (`/order_status`): the chat widget shows
them, and on the phone the keypad presses them (1 = first button), so a choice never goes back
through the classifier."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SlotSet, UserUttered, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import TOPIC_NAMES, ActionRephraseOrHandoff

PHONE = "phone"
CANDIDATE_FLOOR = 0.08  # below this a "candidate" is noise: ask to rephrase instead
CLARIFIABLE = {**TOPIC_NAMES, "human_handoff": "转人工"}


def candidates(tracker: Tracker) -> List[str]:
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    return [r["name"] for r in ranking
            if r.get("name") in CLARIFIABLE and float(r.get("confidence") or 0) >= CANDIDATE_FLOOR][:3]


def previous_bot_action(tracker: Tracker) -> Optional[str]:
    """The last action before the latest user message (action_listen does not count)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "action" and event.get("name") != "action_listen":
            return event.get("name")
    return None


def button(intent: str) -> Dict[str, str]:
    return {"title": CLARIFIABLE[intent], "payload": f"/{intent}"}


class ActionClarifyIntent(Action):
    def name(self) -> Text:
        return "action_clarify_intent"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        stage = tracker.get_slot("clarify_stage")
        if intent == "deny" and previous_bot_action(tracker) == self.name() and stage:
            return self._next_stage(dispatcher, tracker, stage)
        found = candidates(tracker)
        if not found:
            return [SlotSet("clarify_stage", None)] + ActionRephraseOrHandoff().run(dispatcher, tracker, domain)
        if tracker.get_latest_input_channel() == PHONE:
            dispatcher.utter_message(response="utter_clarify_confirm", topic=CLARIFIABLE[found[0]],
                                     buttons=[button(found[0]), {"title": "不是", "payload": "/deny"}])
            stage = "confirm"
        else:  # the widget shows the top two as buttons at once
            dispatcher.utter_message(response="utter_clarify_choose",
                                     buttons=[button(i) for i in found[:2]] + [{"title": "都不是", "payload": "/deny"}])
            stage = "alternatives"
        return [SlotSet("clarify_stage", stage), SlotSet("clarify_candidates", found)]

    def _next_stage(self, dispatcher: CollectingDispatcher, tracker: Tracker, stage: str) -> List[Dict[Text, Any]]:
        rest = (tracker.get_slot("clarify_candidates") or [])[1:]
        if stage == "confirm" and rest:
            dispatcher.utter_message(response="utter_clarify_alternatives",
                                     first=CLARIFIABLE[rest[0]], second=CLARIFIABLE[rest[1]] if len(rest) > 1 else "其他问题",
                                     buttons=[button(i) for i in rest[:2]] + [{"title": "都不是", "payload": "/deny"}])
            return [SlotSet("clarify_stage", "alternatives")]
        if stage in ("confirm", "alternatives"):
            dispatcher.utter_message(response="utter_keypad_menu")
            return [SlotSet("clarify_stage", "menu")]
        dispatcher.utter_message(text="抱歉，我还是没能理解。要为您转接人工顾问吗？")
        return [SlotSet("clarify_stage", None), SlotSet("handoff_offered", True)]


class ActionAcceptClarification(Action):
    """"是" to "您是想…吗？": replay the unclear message with the confirmed intent, so the dialogue
    continues exactly as if it had been understood the first time (what Rasa's own two-stage
    fallback does: revert the confirmation and the original message, then re-add it)."""

    def name(self) -> Text:
        return "action_accept_clarification"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        found = tracker.get_slot("clarify_candidates") or []
        unclear = self._unclear_message(tracker)
        if tracker.get_slot("clarify_stage") != "confirm" or not found or unclear is None \
                or previous_bot_action(tracker) != ActionClarifyIntent().name():
            dispatcher.utter_message(response="utter_anything_else")
            return [SlotSet("clarify_stage", None)]
        parse = dict(unclear.get("parse_data") or {})
        parse["intent"] = {"name": found[0], "confidence": 1.0}
        return [UserUtteranceReverted(), UserUtteranceReverted(), ActionExecuted("action_listen"),
                UserUttered(unclear.get("text"), parse_data=parse, input_channel=unclear.get("input_channel"))]

    @staticmethod
    def _unclear_message(tracker: Tracker) -> Optional[Dict[str, Any]]:
        users = [e for e in tracker.events if e.get("event") == "user"]
        return users[-2] if len(users) >= 2 else None
