"""Facts the actions read from bot/domain.yml instead of restating them: the slots the forms fill."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List

import yaml

from hotline.core.settings import PROJECT_ROOT


@lru_cache(maxsize=1)
def domain() -> Dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))


def form_slots() -> List[str]:
    """Every slot some form asks for, in the domain's order (reset when a form ends or gives up)."""
    slots: List[str] = []
    for form in (domain().get("forms") or {}).values():
        slots += [s for s in form.get("required_slots") or [] if s not in slots]
    return slots
