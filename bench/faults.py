"""Benchmark of the faults a public line meets (not a test): prints numbers.

Against a text-only stack (`hotline.launcher.Stack`) on free ports with its own var directory:
1. a turn that needs the action server while it is stalled (SIGSTOP): seconds to the answer;
2. the same with the action server killed (SIGKILL): seconds to the answer, and to the first turn
   that works again after the launcher restarted it;
3. guessing a phone tail: the guesses the records service allows on one order in 24 hours, from
   the lockout policy, and the check itself on the running stack (one conversation per guess).

Usage: .venv/bin/python bench/faults.py [--runs 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from actions.records.attempts import AttemptPolicy  # noqa: E402
from actions.records.client import SqlRecordsClient  # noqa: E402
from actions.records.seed import seed  # noqa: E402
from hotline.launcher import Stack  # noqa: E402
from hotline.core.settings import Settings  # noqa: E402
from hotline.cluster import free_port  # noqa: E402


def turn(url: str, text: str) -> tuple:
    started = time.monotonic()
    reply = requests.post(f"{url}/v1/chat", json={"text": text, "session_id": f"f-{uuid.uuid4().hex[:8]}"},
                          timeout=120).json()
    return time.monotonic() - started, reply


def guesses_per_day(policy: AttemptPolicy) -> int:
    """Failures allowed on one record in 24 h: `record_limit` per window, then lockouts that double."""
    elapsed, guesses, lockouts = dt.timedelta(0), 0, 0
    while elapsed < dt.timedelta(hours=24):
        guesses += policy.record_limit
        elapsed += min(policy.lockout * 2 ** lockouts, policy.max_lockout)
        lockouts += 1
    return guesses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="faults-"))
    settings = Settings(var_dir=var, rasa_port=free_port(), action_port=free_port(), gateway_port=free_port(),
                        audiosocket_port=0, load_speech=False, rate_limit_chat="10000/minute")
    seed(SqlRecordsClient(settings.resolved_database_url()))
    stalled, dead, back = [], [], []
    with Stack(settings) as stack:
        url = settings.gateway_url
        turn(url, "转人工")  # warm
        for _ in range(args.runs):
            pid = stack.pids()["action_server"]
            os.killpg(pid, signal.SIGSTOP)
            seconds, reply = turn(url, "转人工")
            os.killpg(pid, signal.SIGCONT)
            stalled.append(seconds)
            assert not reply.get("handoff"), reply
            time.sleep(2)  # let the stalled turn's actions drain
            killed_at = time.monotonic()
            os.killpg(pid, signal.SIGKILL)
            seconds, reply = turn(url, "转人工")
            dead.append(seconds)
            while not turn(url, "转人工")[1].get("handoff"):
                time.sleep(0.2)
            back.append(time.monotonic() - killed_at)
            stack.restarts.clear()  # each run starts with a clean restart budget
        order_guesses = []
        for tail in ("0000", "1111", "2222", "5678"):  # the last is right, but too late
            sender = f"g-{uuid.uuid4().hex[:8]}"
            requests.post(f"{url}/v1/chat", json={"text": "查订单 W1000000002", "session_id": sender})
            order_guesses.append(requests.post(f"{url}/v1/chat", json={"text": tail, "session_id": sender}).json())
    print(f"action server stalled: answer (apology) in p50 {statistics.median(stalled):.2f} s, "
          f"max {max(stalled):.2f} s over {args.runs} runs (RASA_TIMEOUT_S {settings.rasa_timeout_s})")
    print(f"action server killed:  answer (apology) in p50 {statistics.median(dead):.2f} s, max {max(dead):.2f} s; "
          f"working again after p50 {statistics.median(back):.1f} s, max {max(back):.1f} s (restart with back-off)")
    revealed = ["MacBook" in " ".join(r["replies"]) for r in order_guesses]
    print(f"phone-tail guessing, one conversation per guess: right tail on the 4th try revealed the order: "
          f"{revealed[-1]}; lockout policy allows {guesses_per_day(AttemptPolicy())} guesses per order "
          f"in 24 h (of 10000 tails)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
