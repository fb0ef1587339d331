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

from actions.handoff import TOPIC_NAMES, ActionHumanHandoff, ActionRephraseOrHandoff, ActionResetState

PHONE = "phone"
CANDIDATE_FLOOR = 0.08  # below this a "candidate" is noise: ask to rephrase instead
CLARIFIABLE = {**TOPIC_NAMES, "human_handoff": "转人工"}


def candidates(tracker: Tracker) -> List[str]:
    """Topics worth confirming, likeliest first; none when the likeliest reading is not a topic
    (out_of_scope, a greeting…): asking "did you mean returns?" about an elephant helps nobody."""
    ranking = [r for r in (tracker.latest_message or {}).get("intent_ranking") or []
               if r.get("name") != "nlu_fallback"]
    if not ranking or ranking[0].get("name") not in CLARIFIABLE:
        return []
    return [r["name"] for r in ranking
            if r.get("name") in CLARIFIABLE and float(r.get("confidence") or 0) >= CANDIDATE_FLOOR][:3]


def unclear_streak(tracker: Tracker) -> int:
    """Consecutive user messages the classifier was unsure about, the latest included."""
    streak = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if ((event.get("parse_data") or {}).get("intent") or {}).get("name") != "nlu_fallback":
                break
            streak += 1
    return streak


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
        if intent == "deny":
            if stage and previous_bot_action(tracker) == self.name():
                return self._next_stage(dispatcher, tracker, stage)
            # "no" to the offer of a human made on the rephrase path: the same as the decline rule
            dispatcher.utter_message(response="utter_anything_else")
            return ActionResetState().run(dispatcher, tracker, domain)
        found = candidates(tracker)
        if not found or unclear_streak(tracker) >= 2:  # unsure twice running: rephrase → human
            return [SlotSet("clarify_stage", None)] + ActionRephraseOrHandoff().run(dispatcher, tracker, domain)
        if tracker.get_latest_input_channel() == PHONE:
            return self._confirm(dispatcher, found)
        # the widget shows the top two as buttons at once
        dispatcher.utter_message(response="utter_clarify_choose",
                                 buttons=[button(i) for i in found[:2]] + [{"title": "都不是", "payload": "/deny"}])
        return [SlotSet("clarify_stage", "alternatives"), SlotSet("clarify_candidates", found)]

    @staticmethod
    def _confirm(dispatcher: CollectingDispatcher, found: List[str]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_clarify_confirm", topic=CLARIFIABLE[found[0]],
                                 buttons=[button(found[0]), {"title": "不是", "payload": "/deny"}])
        return [SlotSet("clarify_stage", "confirm"), SlotSet("clarify_candidates", found)]

    def _next_stage(self, dispatcher: CollectingDispatcher, tracker: Tracker, stage: str) -> List[Dict[Text, Any]]:
        rest = (tracker.get_slot("clarify_candidates") or [])[1:]
        if stage == "confirm" and len(rest) == 1:  # one other candidate: confirm that one
            return self._confirm(dispatcher, rest)
        if stage == "confirm" and rest:
            dispatcher.utter_message(response="utter_clarify_alternatives",
                                     first=CLARIFIABLE[rest[0]], second=CLARIFIABLE[rest[1]],
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
        users = [e for e in tracker.events if e.get("event") == "user"]
        unclear = next((i for i in range(len(users) - 1, -1, -1)
                        if ((users[i].get("parse_data") or {}).get("intent") or {}).get("name") == "nlu_fallback"), None)
        if tracker.get_slot("clarify_stage") != "confirm" or not found or unclear is None \
                or previous_bot_action(tracker) != ActionClarifyIntent().name():
            if tracker.get_slot("handoff_offered") and not tracker.get_slot("clarify_stage"):
                # "yes" to the offer of a human made on the rephrase path
                return ActionHumanHandoff().run(dispatcher, tracker, domain)
            dispatcher.utter_message(response="utter_anything_else")
            return [SlotSet("clarify_stage", None)]
        message = users[unclear]
        parse = dict(message.get("parse_data") or {})
        parse["intent"] = {"name": found[0], "confidence": 1.0}
        # One revert per user message from the unclear one on (the "no"s and this "yes" included).
        reverts = [UserUtteranceReverted() for _ in range(len(users) - unclear)]
        return reverts + [ActionExecuted("action_listen"),
                          UserUttered(message.get("text"), parse_data=parse, input_channel=message.get("input_channel"))]
