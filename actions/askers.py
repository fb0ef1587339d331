"""Who is asking, from what the gateway put in the message metadata (`client`: the chat user's
address; `caller`: the calling number on the phone). Only the gateway reaches Rasa (loopback), so
the metadata is as trustworthy as the gateway."""
from __future__ import annotations

import hashlib
import re
from typing import Optional

from rasa_sdk import Tracker

from actions.records import Asker


def caller_hash(number: Optional[str]) -> Optional[str]:
    """A calling number as a hash: cases remember their caller without storing the number."""
    digits = re.sub(r"\D", "", number or "")
    return hashlib.sha256(digits[-11:].encode()).hexdigest() if len(digits) >= 7 else None


def asker(tracker: Tracker) -> Asker:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    client = metadata.get("client") if isinstance(metadata.get("client"), str) else None
    caller = metadata.get("caller") if isinstance(metadata.get("caller"), str) else None
    return Asker(sender_id=tracker.sender_id, client=(client or None) and client[:64],
                 caller_hash=caller_hash(caller))
