"""`hotline inbox [label ID INTENT]`: what the bot was unsure about, and labelling it into the data."""
from __future__ import annotations

import json
import sys

from hotline.commands.nlu import print_add_report
from hotline.core.settings import Settings, get_settings


def cmd_inbox(settings: Settings, as_json: bool) -> int:
    from hotline.trainer.inbox import current_inbox

    items = current_inbox(settings)
    if as_json:
        print(json.dumps([i.as_dict() for i in items], ensure_ascii=False, indent=1))
        return 0
    if not items:
        print("inbox is empty")
    for item in items:
        guess = max(item.predicted, key=item.predicted.get) if item.predicted else "-"
        print(f"{item.id}  ×{item.count:<3} guess={guess:<20} {item.text}")
    return 0


def cmd_inbox_label(settings: Settings, identifier: str, intent: str) -> int:
    from hotline.trainer.inbox import label_item

    report = label_item(settings, identifier, intent)
    if report is None:
        print(f"error: no inbox item {identifier} (run `hotline inbox`)", file=sys.stderr)
        return 2
    return print_add_report(report)


def cmd_inbox_command(args) -> int:
    if args.action == "label":
        return cmd_inbox_label(get_settings(), args.id, args.intent)
    return cmd_inbox(get_settings(), args.json)


def register(sub) -> None:
    inbox = sub.add_parser("inbox", help="messages the bot was unsure about (from the tracker store)")
    inbox.add_argument("--json", action="store_true")
    inbox.set_defaults(func=cmd_inbox_command, action="list")
    inbox_sub = inbox.add_subparsers(dest="action")
    label = inbox_sub.add_parser("label", help="move an inbox item into the training data")
    label.add_argument("id")
    label.add_argument("intent")
