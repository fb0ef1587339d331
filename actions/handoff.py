"""Human handoff, the rephrase-then-offer-a-human fallback, and small state resets."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.askers import asker
from hotline.core.privacy import mask_messages
from actions.records import records_client
from actions.service_actions import FORM_SLOTS, reset_slots, spaced

logger = logging.getLogger(__name__)

TOPIC_NAMES = {
    "activation": "设备激活", "crash": "应用闪退或系统崩溃", "water_damage": "进水或摔落损坏",
    "os_update": "系统更新", "battery": "电池", "data_migration": "数据迁移",
    "apple_id_reset": "Apple ID密码或账户锁定", "unauthorized_purchase": "未授权购买或账户异常",
    "scam_call": "疑似诈骗来电", "order_status": "订单查询", "return_exchange": "退换货",
    "payment_change": "支付方式变更", "warranty": "保修查询", "repair_appointment": "维修预约",
    "case_followup": "案例跟进", "service_hours": "服务时间", "support_channels": "支持渠道",
}
SUMMARY_MESSAGES = 5
# The source: calls are routed to advisors in skill groups. Topics → the group that handles them.
SKILL_GROUPS = {
    "orders": {"order_status", "return_exchange", "payment_change"},
    "repairs": {"warranty", "repair_appointment", "water_damage", "battery", "activation", "crash", "case_followup"},
    "account": {"apple_id_reset", "unauthorized_purchase", "scam_call"},
}


def skill_group(topic: str) -> str:
    return next((group for group, topics in SKILL_GROUPS.items() if topic in topics), "general")


def on_phone(tracker: Tracker) -> bool:
    return tracker.get_latest_input_channel() == "phone"


def repeated(number: str) -> str:
    """A number for the ear: in groups of three, said twice."""
    return f"{spaced(number)}，我再说一遍，{spaced(number)}"


def user_turns(tracker: Tracker) -> List[Dict[Text, Any]]:
    """User messages of the current session, oldest first; a rewind (a confirmed question replayed,
    actions/clarify.py) takes back the message before it."""
    turns: List[Dict[Text, Any]] = []
    for event in tracker.events:
        if event.get("event") == "session_started":
            turns = []
        elif event.get("event") == "user":
            turns.append(event)
        elif event.get("event") == "rewind" and turns:
            turns.pop()
    return turns


def case_summary(tracker: Tracker) -> tuple:
    turns = user_turns(tracker)
    intents = [((t.get("parse_data") or {}).get("intent") or {}).get("name") for t in turns]
    topics = [i for i in intents if i in TOPIC_NAMES]
    topic = topics[-1] if topics else "general"
    said = [(t.get("text") or "").strip() for t in turns
            if (t.get("text") or "").strip() and not (t.get("text") or "").startswith("/")]  # not buttons/keys
    # Masked before anything is cut or left out: a number dictated over several turns is masked whole.
    said = [message[:120] for message in mask_messages(said)]
    summary = f"来电主题：{TOPIC_NAMES.get(topic, '一般咨询')}。用户原话：" + " / ".join(said[-SUMMARY_MESSAGES:])
    return topic, summary[:1000]


class ActionHumanHandoff(Action):
    def name(self) -> Text:
        return "action_human_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        topic, summary = case_summary(tracker)
        case = records_client().create_case(tracker.sender_id, topic, summary, caller_hash=asker(tracker).caller_hash)
        if on_phone(tracker):
            text = (f"好的，正在为您转接顾问，案例编号{repeated(case.case_number)}。"
                    "顾问已看到问题摘要，也不会向您索取密码或验证码。")
        else:
            text = (f"好的，正在为您转接人工顾问。已创建服务案例，编号{spaced(case.case_number)}，请记下以便后续跟进。"
                    "问题摘要已转给顾问，您不用重复说明。请注意，顾问不会向您索取密码或验证码。")
        dispatcher.utter_message(text=text, json_message={
            "handoff": True, "case_number": case.case_number, "topic": topic, "skill_group": skill_group(topic),
            "summary": summary})
        logger.info("handoff for sender %s, case %s", tracker.sender_id, case.case_number)
        return reset_slots(*FORM_SLOTS) + [SlotSet("handoff_offered", False)]


class ActionRephraseOrHandoff(Action):
    """First low-confidence turn: ask to rephrase. Second in a row: offer a human.
    Third in a row: hand over without asking again."""

    def name(self) -> Text:
        return "action_rephrase_or_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        streak = 0
        for turn in reversed(user_turns(tracker)):
            if ((turn.get("parse_data") or {}).get("intent") or {}).get("name") != "nlu_fallback":
                break
            streak += 1
        if streak <= 1:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        if streak == 2:
            dispatcher.utter_message(text="抱歉，我还是没能理解。要为您转接人工顾问吗？")
            return [SlotSet("handoff_offered", True)]
        return ActionHumanHandoff().run(dispatcher, tracker, domain)


class ActionOfferHandoff(Action):
    def name(self) -> Text:
        return "action_offer_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        return [SlotSet("handoff_offered", True)]


class ActionResetState(Action):
    """Clears a declined handoff offer and any half-filled form."""

    def name(self) -> Text:
        return "action_reset_state"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        return reset_slots(*FORM_SLOTS) + [SlotSet("handoff_offered", False)]
