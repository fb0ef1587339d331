"""The trainers' inbox: caller messages the bot was unsure about, read from the tracker store.

A message is in the inbox when its intent confidence was below the fallback threshold, when it
was classified `nlu_fallback`, or when the bot answered it by asking to rephrase or handing over to
a human. Near-identical messages (same text once numbers and punctuation are ignored) are one item."""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from sqlalchemy import create_engine, text

from hotline.core.privacy import mask_sensitive, message_groups

UNSURE_ACTIONS = {"action_rephrase_or_handoff", "action_clarify_intent", "action_human_handoff", "action_default_fallback",
                  "utter_inform_unclear", "utter_default"}


@dataclass
class InboxItem:
    id: str
    text: str  # masked
    count: int = 0
    predicted: Dict[str, int] = field(default_factory=dict)
    reasons: Dict[str, int] = field(default_factory=dict)
    senders: set = field(default_factory=set)

    def as_dict(self) -> Dict[str, object]:
        return {"id": self.id, "text": self.text, "count": self.count, "predicted": self.predicted,
                "reasons": self.reasons, "conversations": len(self.senders)}


def group_key(message: str) -> str:
    normal = unicodedata.normalize("NFKC", mask_sensitive(message)).lower()
    normal = re.sub(r"\d+", "#", normal)
    return "".join(ch for ch in normal if ch.isalnum() or ch == "#" or ch == "*")


def item_id(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:8]


def fallback_threshold(config_path: Path) -> float:
    from ruamel.yaml import YAML

    config = YAML(typ="safe").load(config_path.read_text(encoding="utf-8"))
    for component in config.get("pipeline", []):
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    return 0.3


def read_inbox(tracker_store_url: str, threshold: float, labelled: Optional[set] = None) -> List[InboxItem]:
    engine = create_engine(tracker_store_url)
    items: "OrderedDict[str, InboxItem]" = OrderedDict()
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT sender_id, type_name, action_name, data FROM events ORDER BY sender_id, id")).fetchall()
    conversations: "OrderedDict[str, list]" = OrderedDict()  # sender → [(user event, actions after it)]
    for sender, type_name, action_name, data in rows:
        if type_name == "user":
            conversations.setdefault(sender, []).append((json.loads(data), set()))
        elif type_name == "action" and action_name and conversations.get(sender):
            conversations[sender][-1][1].add(action_name)
    for sender, turns in conversations.items():
        texts = [(event.get("text") or "").strip() for event, _ in turns]
        # A number dictated over several messages is one item (masked whole), not its pieces.
        for group in message_groups(texts):
            event, actions = turns[group[0]]
            if len(group) > 1:
                event = dict(event, text=" ".join(texts[i] for i in group))
                actions = set().union(*(turns[i][1] for i in group))
            _consider(items, sender, event, actions, threshold, labelled or set())
    engine.dispose()
    return sorted(items.values(), key=lambda i: -i.count)


def _consider(items, sender, event, actions, threshold, labelled) -> None:
    message = (event.get("text") or "").strip()
    if not message or message.startswith("/"):
        return
    parse = event.get("parse_data") or {}
    intent = parse.get("intent") or {}
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
    reasons = []
    if intent.get("name") == "nlu_fallback":
        reasons.append("fallback")
    elif intent.get("confidence") is not None and intent["confidence"] < threshold:
        reasons.append("low_confidence")
    reasons += sorted(actions & UNSURE_ACTIONS)
    if not reasons or (intent.get("name") == "human_handoff" and reasons == ["action_human_handoff"]):
        return  # asking for a human on purpose is not a misunderstanding
    key = group_key(message)
    identifier = item_id(key)
    if identifier in labelled:
        return
    item = items.setdefault(identifier, InboxItem(identifier, mask_sensitive(message)))
    item.count += 1
    item.senders.add(sender)
    guess = ranking[0]["name"] if ranking else intent.get("name")
    item.predicted[guess] = item.predicted.get(guess, 0) + 1
    for reason in reasons:
        item.reasons[reason] = item.reasons.get(reason, 0) + 1


def labelled_ids(path: Path) -> set:
    return set(json.loads(path.read_text())) if path.exists() else set()


def remember_labelled(path: Path, identifier: str) -> None:
    ids = labelled_ids(path) | {identifier}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sorted(ids)))


def current_inbox(settings) -> List[InboxItem]:
    return read_inbox(settings.resolved_tracker_store_url(),
                      fallback_threshold(settings.project_root / "bot" / "config.yml"),
                      labelled_ids(settings.var_dir / "inbox_labelled.json"))


def label_item(settings, identifier: str, intent: str):
    """Move an inbox item (masked) into data/nlu as an example of `intent`. None if no such item."""
    from hotline.trainer.nlu_data import NluData, normalize_example

    items = {item.id: item for item in current_inbox(settings)}
    if identifier not in items:
        return None
    data = NluData(settings.project_root / "data" / "nlu", settings.project_root / "bot" / "domain.yml")
    # Masked again as it will be written: normalising (full-width → ASCII, runs of spaces → one)
    # must not bring a number's pieces back together.
    report = data.add(intent, [mask_sensitive(normalize_example(items[identifier].text))])
    data.save()
    if report.added or report.duplicates:
        remember_labelled(settings.var_dir / "inbox_labelled.json", identifier)
    return report
