"""Custom actions run directly against a real SQLite records database."""
from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.forms
import actions.handoff
import actions.service_actions
from actions.forms import ValidateOrderForm, ValidateWarrantyForm
from actions.handoff import ActionHumanHandoff, ActionRephraseOrHandoff
from actions.records.client import SqlRecordsClient
from actions.records.seed import seed
from actions.service_actions import ActionCheckWarranty, ActionOrderStatus


@pytest.fixture
def records(tmp_path, monkeypatch):
    client = SqlRecordsClient(f"sqlite:///{tmp_path / 'records.db'}")
    seed(client)
    for module in (actions.forms, actions.service_actions, actions.handoff):
        monkeypatch.setattr(module, "records_client", lambda: client)
    return client


def user(text, intent, confidence=0.9):
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent, "confidence": confidence}}}


def tracker(slots=None, events=None, sender="caller-1"):
    return Tracker(sender, slots or {}, {"intent": {}, "entities": []}, events or [], False, None,
                   {"name": None}, "action_listen")


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_phone_tail_mismatch_counts_and_stops_the_form_after_three(records):
    form, dispatcher = ValidateOrderForm(), CollectingDispatcher()
    state = {"order_number": "W1000000001", "failed_attempts": 2, "requested_slot": "phone_tail"}
    result = form.validate_phone_tail("0000", dispatcher, tracker(state), {})
    assert result == {"phone_tail": None, "failed_attempts": 3, "order_number": None}  # ask for both again
    assert "订单号或手机号后四位" in dispatcher.messages[0]["text"]
    required = asyncio.run(form.required_slots(["order_number", "phone_tail"], dispatcher,
                                               tracker({**state, "failed_attempts": 3}), {}))
    assert required == []


def test_guessing_in_new_conversations_meets_the_lock_on_the_order(records):
    """Each new conversation starts its form counter at zero; the order's count on the server does not."""
    for sender, tail in (("guess-1", "1111"), ("guess-2", "2222"), ("guess-3", "3333")):
        ValidateOrderForm().validate_phone_tail(tail, CollectingDispatcher(),
                                                tracker({"order_number": "W1000000001"}, sender=sender), {})
    dispatcher = CollectingDispatcher()
    result = ValidateOrderForm().validate_phone_tail("1234", dispatcher, tracker({"order_number": "W1000000001"},
                                                                                 sender="guess-4"), {})
    assert result == {"order_number": None, "phone_tail": None, "failed_attempts": 3}  # the form ends
    events = ActionOrderStatus().run(dispatcher, tracker({"order_number": None, "phone_tail": None}), {})
    assert "iPhone 16" not in str(dispatcher.messages) and "转接人工顾问" in dispatcher.messages[-1]["text"]
    assert slots_of(events)["handoff_offered"] is True


def test_phone_tail_match(records):
    result = ValidateOrderForm().validate_phone_tail(
        "尾号一二三四", CollectingDispatcher(), tracker({"order_number": "W1000000001"}), {})
    assert result == {"phone_tail": "1234"}


def test_unknown_serial_is_rejected_politely(records):
    dispatcher = CollectingDispatcher()
    result = ValidateWarrantyForm().validate_serial_number("ZZZZ99999999", dispatcher, tracker(), {})
    assert result["serial_number"] is None
    assert "9999" in dispatcher.messages[0]["text"] and "ZZZZ99999999" not in dispatcher.messages[0]["text"]


def test_expired_warranty_wording(records):
    dispatcher = CollectingDispatcher()
    events = ActionCheckWarranty().run(dispatcher, tracker({"serial_number": "FVFXC3JKQ6L4"}), {})
    assert "已于" in dispatcher.messages[0]["text"] and "到期" in dispatcher.messages[0]["text"]
    assert slots_of(events)["serial_number"] is None


def test_order_status_without_verification_reveals_nothing(records):
    dispatcher = CollectingDispatcher()
    events = ActionOrderStatus().run(dispatcher, tracker({"order_number": "W1000000002", "phone_tail": "9999"}), {})
    assert "MacBook" not in dispatcher.messages[0]["text"]
    assert slots_of(events)["handoff_offered"] is True


def test_handoff_summary_is_masked_and_stored(records):
    dispatcher = CollectingDispatcher()
    history = [{"event": "session_started"}, user("我的手机号13812345678 序列号C39XK1ABHG7F 进水了", "water_damage"),
               user("转人工", "human_handoff")]
    ActionHumanHandoff().run(dispatcher, tracker(events=history), {})
    payload = dispatcher.messages[0]["custom"]
    case = records.case(payload["case_number"])
    assert case.topic == "water_damage"
    assert "13812345678" not in case.summary and "C39XK1ABHG7F" not in case.summary
    assert "138****5678" in case.summary and "进水" in case.summary


def test_handoff_summary_follows_a_confirmed_question_not_the_rewound_turns(records):
    """After "您是想…吗？" → "是的", the question is replayed (two rewinds): the summary has the
    caller's words once, the confirmed topic, and neither "是的" nor a key's intent payload."""
    dispatcher = CollectingDispatcher()
    history = [{"event": "session_started"}, user("机火的时候一直转圈", "nlu_fallback", 0.3), user("是的", "affirm"),
               {"event": "rewind"}, {"event": "rewind"}, user("机火的时候一直转圈", "activation", 1.0),
               user("/human_handoff", "human_handoff", 1.0)]
    ActionHumanHandoff().run(dispatcher, tracker(events=history), {})
    case = records.case(dispatcher.messages[0]["custom"]["case_number"])
    assert case.topic == "activation"
    assert case.summary.count("机火的时候一直转圈") == 1
    assert "是的" not in case.summary and "/human_handoff" not in case.summary


@pytest.mark.parametrize("streak,expected", [(1, "utter_ask_rephrase"), (2, "offer"), (3, "handoff")])
def test_rephrase_then_offer_then_handoff(records, streak, expected):
    dispatcher = CollectingDispatcher()
    history = [user("查保修", "warranty")] + [user(f"??{i}", "nlu_fallback", 0.2) for i in range(streak)]
    events = ActionRephraseOrHandoff().run(dispatcher, tracker(events=history), {})
    message = dispatcher.messages[0]
    if expected == "utter_ask_rephrase":
        assert message["response"] == "utter_ask_rephrase" and events == []
    elif expected == "offer":
        assert "转接人工顾问吗" in message["text"] and slots_of(events)["handoff_offered"] is True
    else:
        assert message["custom"]["handoff"] is True


def test_the_actions_facts_agree_with_the_domain():
    """Every topic the actions name is an intent of the domain, and every intent the domain has is a
    topic or one of the conversational ones (the form slots are read from the domain itself)."""
    import yaml

    from actions.handoff import SKILL_GROUPS, TOPIC_NAMES
    from tests.conftest import ROOT

    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))
    intents = set(domain["intents"])
    conversational = {"greet", "goodbye", "thanks", "affirm", "deny", "inform", "human_handoff", "out_of_scope"}
    assert set(TOPIC_NAMES) <= intents
    assert intents - set(TOPIC_NAMES) <= conversational, intents - set(TOPIC_NAMES) - conversational
    assert set().union(*SKILL_GROUPS.values()) <= set(TOPIC_NAMES)
