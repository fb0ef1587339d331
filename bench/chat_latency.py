"""Benchmark of the bot foundation (not a test): prints numbers.

1. time from `make run` (already set up) to both servers answering;
2. REST turns that run a custom action (form validation + records lookup, handoff): p50/p95;
3. resident memory of each server.

Usage: .venv/bin/python bench/chat_latency.py [--turns 60]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.proc import cmdline, descendants, memory_mb  # noqa: E402
from tests.conftest import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# One conversation = three turns, each running at least one custom action on the action server:
# the warranty form (validate_warranty_form), the serial (validation + records lookup +
# action_check_warranty), and a handoff (action_human_handoff writes a support case).
TURNS = ["帮我查一下保修", "C39XK1ABHG7F", "转人工"]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=60)
    args = parser.parse_args()

    var_dir = tempfile.mkdtemp(prefix="hotline-bench-")
    env = dict(os.environ, VAR_DIR=var_dir, RASA_PORT=str(free_port()), ACTION_PORT=str(free_port()))
    rasa_url = f"http://127.0.0.1:{env['RASA_PORT']}"
    action_url = f"http://127.0.0.1:{env['ACTION_PORT']}"
    subprocess.run(["make", "-s", "setup"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

    started = time.monotonic()
    make = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    ready = {}
    while len(ready) < 2 and time.monotonic() - started < 300:
        for name, url in (("action_server", f"{action_url}/health"), ("rasa", f"{rasa_url}/")):
            if name not in ready:
                try:
                    if requests.get(url, timeout=1).status_code == 200:
                        ready[name] = time.monotonic() - started
                except requests.RequestException:
                    pass
        time.sleep(0.05)
    try:
        print(f"make run → both servers ready: {max(ready.values()):.1f} s "
              f"(action server {ready['action_server']:.1f} s, rasa {ready['rasa']:.1f} s)")

        session = requests.Session()
        session.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": "warm-up", "message": "你好"}, timeout=30)
        latencies, by_kind = [], {text: [] for text in TURNS}
        for i in range(args.turns):
            text = TURNS[i % len(TURNS)]
            sender = f"bench-{i // len(TURNS)}"
            t0 = time.perf_counter()
            reply = session.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                                 timeout=30)
            latencies.append((time.perf_counter() - t0) * 1000)
            by_kind[text].append(latencies[-1])
            assert reply.status_code == 200 and reply.json(), reply.text
        print(f"REST turns with a custom action: n={len(latencies)}  p50={statistics.median(latencies):.1f} ms  "
              f"p95={percentile(latencies, 95):.1f} ms  max={max(latencies):.1f} ms")
        for text, values in by_kind.items():
            print(f"  {text}: p50={statistics.median(values):.1f} ms (n={len(values)})")

        for pid in descendants(make.pid):
            line = cmdline(pid)
            for name, marker in (("rasa server", "hotline.rasa_server run"), ("action server", "-m rasa_sdk")):
                if marker in line:
                    mem = memory_mb(pid)
                    print(f"{name}: rss {mem['rss_mb']:.0f} MB (peak {mem['peak_rss_mb']:.0f} MB)")
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
