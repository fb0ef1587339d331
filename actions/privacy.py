"""Masking of serial numbers and phone numbers wherever text leaves the conversation
(logs, case summaries, training data exported from real conversations)."""
from __future__ import annotations

import logging
import re

PHONE = re.compile(r"(?<![A-Za-z0-9])(1[3-9]\d)(\d{4})(\d{4})(?![A-Za-z0-9])")
SERIAL = re.compile(
    r"(?<![A-Za-z0-9])(?![Ww]\d{10}(?![A-Za-z0-9]))"
    r"(?=[A-HJ-NP-Za-hj-np-z0-9]*[0-9])(?=[A-HJ-NP-Za-hj-np-z0-9]*[A-HJ-NP-Za-hj-np-z])"
    r"[A-HJ-NP-Za-hj-np-z0-9]{10,12}(?![A-Za-z0-9])"
)


def mask_sensitive(text: str) -> str:
    """`13812345678` → `138****5678`; `C39XK1ABHG7F` → `********HG7F`."""
    if not text:
        return text
    text = PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return SERIAL.sub(lambda m: "*" * (len(m.group(0)) - 4) + m.group(0)[-4:], text)


class MaskingFilter(logging.Filter):
    """Rewrites each log record's message with `mask_sensitive` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as is rather than dropped
            return True
        masked = mask_sensitive(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking() -> None:
    """Mask on the root logger and on every handler, including ones added later by the SDK."""
    masking = MaskingFilter()
    root = logging.getLogger()
    root.addFilter(masking)
    for handler in root.handlers:
        handler.addFilter(masking)
    # Handlers added after this call get the filter too.
    original_add_handler = logging.Logger.addHandler

    def add_handler(self, handler):
        handler.addFilter(masking)
        return original_add_handler(self, handler)

    logging.Logger.addHandler = add_handler
