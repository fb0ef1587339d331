"""Form validation: one `validate_<slot>` per slot (rasa-sdk `FormValidationAction`).

Each validator pulls the identifier out of whatever the caller said, checks its format and
that the record exists, and counts failures; after MAX_ATTEMPTS the form stops asking and
the submit action offers a human advisor instead."""
from __future__ import annotations

import abc
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.askers import asker
from actions.numbers import extract_case_number, extract_order_number, extract_phone_tail, extract_serial
from actions.records import records_client
from actions.slot_meaning import is_fault_description, parse_city, parse_preferred_time

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
KNOWN_DEVICES = {
    "iphone": "iPhone", "苹果手机": "iPhone", "手机": "iPhone", "爱疯": "iPhone",
    "ipad": "iPad", "平板": "iPad",
    "macbook": "Mac", "imac": "Mac", "mac": "Mac", "笔记本": "Mac", "电脑": "Mac",
    "apple watch": "Apple Watch", "手表": "Apple Watch", "watch": "Apple Watch",
    "airpods": "AirPods", "耳机": "AirPods",
}


def attempts(tracker: Tracker) -> float:
    return tracker.get_slot("failed_attempts") or 0


def rejected(slot: str, tracker: Tracker) -> Dict[Text, Any]:
    return {slot: None, "failed_attempts": attempts(tracker) + 1}


def locked_out(*slots: str) -> Dict[Text, Any]:
    """The server refused the check (too many failures): stop the form; its submit action
    finds the slots empty and offers an advisor."""
    return {**{slot: None for slot in slots}, "failed_attempts": MAX_ATTEMPTS}


NOT_VERIFIED_ORDER = "订单号或手机号后四位与记录不一致，请核对后重新提供。"
NOT_VERIFIED_CASE = "没能核实这个案例编号。案例只能由创建它的会话或来电号码在线查询，请核对后再说一遍。"


class AttemptLimitedForm(FormValidationAction, abc.ABC):
    """Stops asking once the caller has failed MAX_ATTEMPTS times. Abstract, so the SDK skips it."""

    @abc.abstractmethod
    def name(self) -> Text:
        """The `validate_<form>` action name."""

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        if attempts(tracker) >= MAX_ATTEMPTS:
            return []
        return domain_slots


class ValidateWarrantyForm(AttemptLimitedForm):
    def name(self) -> Text:
        return "validate_warranty_form"

    def validate_serial_number(self, value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        serial = extract_serial(str(value))
        if serial is None:
            dispatcher.utter_message(text="这个序列号的格式不对。序列号是10到12位字母和数字，可以在“设置—通用—关于本机”里找到。")
            return rejected("serial_number", tracker)
        if records_client().warranty(serial) is None:
            dispatcher.utter_message(text=f"没有查到序列号尾号{serial[-4:]}的设备，请核对后再说一遍。")
            return rejected("serial_number", tracker)
        return {"serial_number": serial}


class ValidateOrderForm(AttemptLimitedForm):
    def name(self) -> Text:
        return "validate_order_form"

    def validate_order_number(self, value: Any, dispatcher: CollectingDispatcher,
                              tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        # Only the format here: whether the order exists is told after the phone-tail check, and
        # in the same words as a wrong tail, so that order numbers cannot be probed one by one.
        order_number = extract_order_number(str(value))
        if order_number is None:
            dispatcher.utter_message(text="订单号的格式不对：官网订单号是字母W加10位数字。")
            return rejected("order_number", tracker)
        return {"order_number": order_number}

    def validate_phone_tail(self, value: Any, dispatcher: CollectingDispatcher,
                            tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        tail = extract_phone_tail(str(value))
        order_number = tracker.get_slot("order_number")
        if tail is None:
            dispatcher.utter_message(text="请只说下单手机号的最后四位数字。")
            return rejected("phone_tail", tracker)
        if order_number is None:
            return rejected("phone_tail", tracker)
        check = records_client().check_order(order_number, tail, asker(tracker))
        if check.locked:
            return locked_out("order_number", "phone_tail")
        if check.record is None:  # either may be wrong: ask for both again
            dispatcher.utter_message(text=NOT_VERIFIED_ORDER)
            return {**rejected("phone_tail", tracker), "order_number": None}
        return {"phone_tail": tail}


class ValidateCaseForm(AttemptLimitedForm):
    def name(self) -> Text:
        return "validate_case_form"

    def validate_case_number(self, value: Any, dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        case_number = extract_case_number(str(value))
        if case_number is None:
            dispatcher.utter_message(text="案例编号是9位数字，请再说一遍。")
            return rejected("case_number", tracker)
        check = records_client().check_case(case_number, asker(tracker))
        if check.locked:
            return locked_out("case_number")
        if check.record is None:
            dispatcher.utter_message(text=NOT_VERIFIED_CASE)
            return rejected("case_number", tracker)
        return {"case_number": case_number}


class ValidateRepairForm(AttemptLimitedForm):
    def name(self) -> Text:
        return "validate_repair_form"

    def validate_device(self, value: Any, dispatcher: CollectingDispatcher,
                        tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        device = _known_device(str(value))
        if device is None:
            dispatcher.utter_message(text="目前可以预约iPhone、iPad、Mac、Apple Watch和AirPods的维修。")
            return rejected("device", tracker)
        return {"device": device}

    def validate_fault(self, value: Any, dispatcher: CollectingDispatcher,
                       tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        text = " ".join(str(value or "").split())
        if not is_fault_description(text):  # a device name, a city or a time is not a fault
            dispatcher.utter_message(text="请简单说一下设备出了什么问题，比如“屏幕碎了”或“开不了机”。")
            return rejected("fault", tracker)
        return {"fault": text}

    def validate_city(self, value: Any, dispatcher: CollectingDispatcher,
                      tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        city = parse_city(str(value or ""))
        if city is None:
            dispatcher.utter_message(text="没有听出是哪个城市，请只说城市名称，比如“上海”。")
            return rejected("city", tracker)
        return {"city": city}

    def validate_preferred_time(self, value: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        when = parse_preferred_time(str(value or ""))
        if when is None:
            dispatcher.utter_message(text="请说一个希望到店的时间，比如“周六上午”或“明天下午三点”。")
            return rejected("preferred_time", tracker)
        return {"preferred_time": when}


def _known_device(text: str) -> Optional[str]:
    lowered = text.lower()
    for name in sorted(KNOWN_DEVICES, key=len, reverse=True):  # longest first: "macbook" before "mac"
        if name in lowered:
            return KNOWN_DEVICES[name]
    return None
