"""`python -m hotline.rasa_server …` is `rasa …` with three speed fixes, measured with py-spy on
bench/chat_latency.py.

1. Cached validation of action-server responses (below).
2. Jieba's dictionary is loaded at start-up instead of during the first caller's turn (~1.5 s).
3. SQLite tracker stores run in WAL mode with synchronous=NORMAL: one fsync per checkpoint instead of
   per turn. A crash of the process loses nothing; a power cut may lose the last turns.


Rasa 3.6 validates every action-server response with `jsonschema.validate`, which re-checks the
schema itself against the metaschema on each call: ~55% of a turn's CPU time with a custom action
(py-spy, bench/chat_latency.py). The same validation with the validator built once is identical
in behaviour and takes microseconds."""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Any, Dict, Text


def _install_cached_action_validation() -> None:
    import jsonschema
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    @lru_cache(maxsize=None)
    def validator():
        schema = RemoteAction.action_response_format_spec()
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
        return validator_class(schema)

    def validate_action_result(self, result: Dict[Text, Any]) -> bool:
        try:
            validator().validate(result)
            return True
        except jsonschema.ValidationError as error:
            error.message += (". Failed to validate Action server response from API, make sure your "
                              f"response from the Action endpoint is valid. See {DOCS_BASE_URL}/custom-actions")
            raise error

    RemoteAction._validate_action_result = validate_action_result


def _warm_up_jieba() -> None:
    import jieba

    jieba.initialize()


def _tune_sqlite_tracker_store() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def sqlite_pragmas(dbapi_connection, _record) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()


def _limit_action_time(seconds: float) -> None:
    """Rasa waits up to 5 minutes for an action (one module constant): a stalled action server
    must turn into an apology within seconds instead."""
    import rasa.core.actions.action as action
    import rasa.utils.endpoints as endpoints

    action.DEFAULT_REQUEST_TIMEOUT = endpoints.DEFAULT_REQUEST_TIMEOUT = seconds


def _token_from_environment() -> None:
    """The API token comes from the environment, not the command line, where `ps` shows it to
    every user of the machine; it is added to argv inside this process only."""
    token = os.environ.pop("HOTLINE_RASA_TOKEN", "")
    if token and "--auth-token" not in sys.argv:
        sys.argv += ["--auth-token", token]


def main() -> None:
    _install_cached_action_validation()
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        _warm_up_jieba()
        _tune_sqlite_tracker_store()
        _limit_action_time(float(os.environ.get("HOTLINE_ACTION_TIMEOUT_S", "3")))
        _token_from_environment()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
