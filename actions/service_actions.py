"""Form submit actions: thin — the records client does the work, these word the answer."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.askers import asker
from actions.domain_facts import form_slots
from actions.records import CaseView, records_client

logger = logging.getLogger(__name__)

FORM_SLOTS = form_slots()
CASE_STATUS = {"open": "已受理，等待顾问处理", "in_progress": "处理中", "closed": "已完结"}
ORDER_STATUS = {"processing": "正在处理", "shipped": "已发货", "delivered": "已签收", "cancelled": "已取消"}


def cn_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def reset_slots(*names: str) -> List[Dict[Text, Any]]:
    return [SlotSet(name, None) for name in names] + [SlotSet("failed_attempts", 0)]


def gave_up(dispatcher: CollectingDispatcher, tracker: Tracker, what: str) -> List[Dict[Text, Any]]:
    """After too many failed attempts: stop asking, offer a human advisor."""
    dispatcher.utter_message(text=f"抱歉，{what}多次未能核对成功。为保护您的信息，我不能继续查询。要为您转接人工顾问吗？")
    return reset_slots(*FORM_SLOTS) + [SlotSet("handoff_offered", True)]


class ActionCheckWarranty(Action):
    def name(self) -> Text:
        return "action_check_warranty"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        serial = tracker.get_slot("serial_number")
        warranty = records_client().warranty(serial) if serial else None
        if warranty is None:
            return gave_up(dispatcher, tracker, "序列号")
        tail = warranty.serial_number[-4:]
        if warranty.coverage == "applecare":
            text = (f"序列号尾号{tail}的{warranty.product}在AppleCare+服务计划内，覆盖至{cn_date(warranty.applecare_until)}。"
                    "可以为您预约维修。")
        elif warranty.coverage == "limited_warranty":
            text = (f"序列号尾号{tail}的{warranty.product}在有限保修期内，保修至{cn_date(warranty.limited_warranty_until)}。"
                    "保修条款以苹果官网说明为准，需要的话可以为您预约维修。")
        else:
            text = (f"序列号尾号{tail}的{warranty.product}保修已于{cn_date(warranty.covered_until)}到期。"
                    "过保设备仍可付费维修，费用以官方检测结果为准，需要的话可以为您预约。")
        dispatcher.utter_message(text=text)
        logger.info("warranty checked for %s: %s", warranty.serial_number, warranty.coverage)
        return reset_slots("serial_number")


class ActionOrderStatus(Action):
    def name(self) -> Text:
        return "action_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        order_number, tail = tracker.get_slot("order_number"), tracker.get_slot("phone_tail")
        order = records_client().verified_order(order_number, tail) if order_number and tail else None
        if order is None:
            return gave_up(dispatcher, tracker, "订单信息")
        head = f"订单{order.order_number}（{order.items}）{ORDER_STATUS.get(order.status, order.status)}"
        if order.status == "processing" and order.estimated_delivery:
            text = f"{head}，预计{cn_date(order.estimated_delivery)}前送达。"
        elif order.status == "shipped":
            text = f"{head}，承运商{order.carrier}，预计{cn_date(order.estimated_delivery)}送达。"
        elif order.status == "delivered" and order.delivered_on:
            text = f"{head}，签收日期{cn_date(order.delivered_on)}。如需退换货，请以苹果官网的退换货政策为准，我也可以为您转人工。"
        else:
            text = f"{head}。如有疑问，我可以为您转人工。"
        dispatcher.utter_message(text=text)
        return reset_slots("order_number", "phone_tail")


class ActionBookRepair(Action):
    def name(self) -> Text:
        return "action_book_repair"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        values = {slot: tracker.get_slot(slot) for slot in ("device", "fault", "city", "preferred_time")}
        if any(v is None for v in values.values()):
            return gave_up(dispatcher, tracker, "预约信息")
        case = records_client().book_repair(tracker.sender_id, **values, caller_hash=asker(tracker).caller_hash)
        if tracker.get_latest_input_channel() == "phone":
            number = spaced(case.case_number)
            text = (f"已为您登记{values['city']}的维修预约，案例编号{number}，我再说一遍，{number}。"
                    "门店和时间会由顾问通过官方渠道与您确认。")
        else:
            text = (f"已为您登记{values['city']}的维修预约：{values['device']}，{values['fault']}，希望时间{values['preferred_time']}。"
                    f"案例编号{spaced(case.case_number)}，请记下，以后说“查案例”加编号就能查询进度。"
                    "具体门店和时间会由顾问通过官方渠道与您确认，请留意；官方人员不会向您索取密码或验证码。")
        dispatcher.utter_message(
            text=text,
            json_message={"case_number": case.case_number, "topic": case.topic},
        )
        return reset_slots("device", "fault", "city", "preferred_time")


class ActionCaseFollowup(Action):
    def name(self) -> Text:
        return "action_case_followup"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        number = tracker.get_slot("case_number")
        case = records_client().case(number) if number else None
        if case is None:
            return gave_up(dispatcher, tracker, "案例编号")
        dispatcher.utter_message(text=describe_case(case))
        return reset_slots("case_number")


def spaced(number: str) -> str:
    """Digits grouped by three so that a listener (or a TTS voice) reads them one by one."""
    return " ".join(number[i:i + 3] for i in range(0, len(number), 3))


def describe_case(case: CaseView) -> str:
    text = (f"案例{spaced(case.case_number)}创建于{cn_date(case.created_at.date())}，"
            f"当前状态：{CASE_STATUS.get(case.status, case.status)}。记录：{case.summary}。")
    if case.appointment:
        a = case.appointment
        text += f"维修预约：{a['city']}，{a['preferred_time']}，顾问会与您确认具体门店。"
    return text
