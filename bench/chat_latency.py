"""Benchmark of the bot foundation (not a test): prints numbers.

Without --replicas (one box, `make run`):
1. time from `make run` (already set up) to both servers answering;
2. REST turns that run a custom action (form validation + records lookup, handoff): p50/p95;
3. resident memory of each server.

With --replicas 1,2 (`hotline cluster` on the machine's PostgreSQL and Redis, text-only gateways):
chat turns through HAProxy → gateway → HAProxy → Rasa → HAProxy → action server, from
--concurrency conversations at once for --seconds: throughput, p50/p95, memory per role, for each
replica count in turn.

Usage: .venv/bin/python bench/chat_latency.py [--turns 60]
       .venv/bin/python bench/chat_latency.py --replicas 1,2 [--concurrency 8] [--seconds 60]
"""
from __future__ import annotations

import argparse
from collections import Counter
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
from hotline.cluster import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# One conversation = three turns, each running at least one custom action on the action server:
# the warranty form (validate_warranty_form), the serial (validation + records lookup +
# action_check_warranty), and a handoff (action_human_handoff writes a support case).
TURNS = ["帮我查一下保修", "C39XK1ABHG7F", "转人工"]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def replicas_benchmark(counts, concurrency: int, seconds: float) -> None:
    import threading
    import uuid

    from sqlalchemy import create_engine, text

    from actions.records.client import SqlRecordsClient
    from actions.records.seed import seed
    from hotline.cluster import Cluster
    from hotline.core.settings import Settings
    from voice_gateway.rasa_client import APOLOGY

    postgres = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    subprocess.run(["make", "-s", "setup"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    print(f"{os.cpu_count()} cores; {concurrency} conversations at once for {seconds:.0f} s; "
          f"each conversation: {' → '.join(TURNS)}")
    for count in counts:
        database = f"hotline_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {database}"))
        url = postgres.rsplit("/", 1)[0] + "/" + database
        seed(SqlRecordsClient(url))
        settings = Settings(var_dir=Path(tempfile.mkdtemp(prefix="hotline-bench-")), rasa_port=free_port(),
                            action_port=free_port(), gateway_port=free_port(), audiosocket_port=free_port(),
                            database_url=url, tracker_store_url=url, lock_store_url=redis_url,
                            load_speech=False, rate_limit_chat="1000000/minute", rasa_timeout_s=30)
        started = time.monotonic()
        try:
            with Cluster(settings, replicas=count) as cluster:
                ready_s = time.monotonic() - started
                chat = f"{settings.gateway_url}/v1/chat"
                requests.post(chat, json={"text": "你好"}, timeout=60)
                latencies, failures, stop = [], [], time.monotonic() + seconds

                def converse(worker: int) -> None:
                    session = requests.Session()
                    n = 0
                    while time.monotonic() < stop:
                        sender = f"bench-{worker}-{n}"
                        n += 1
                        for message in TURNS:
                            t0 = time.perf_counter()
                            reply = session.post(chat, json={"text": message, "session_id": sender}, timeout=60)
                            elapsed = (time.perf_counter() - t0) * 1000
                            if reply.status_code != 200:
                                failures.append(reply.status_code)
                            elif reply.json()["replies"] == [APOLOGY]:  # Rasa or an action failed
                                failures.append("apology")
                            else:
                                latencies.append(elapsed)

                threads = [threading.Thread(target=converse, args=(w,)) for w in range(concurrency)]
                t0 = time.monotonic()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.monotonic() - t0
                memory = {}
                for name, process in cluster.processes.items():
                    role = name.rsplit("-", 1)[0]
                    mb = sum(memory_mb(pid)["rss_mb"] for pid in [process.pid] + descendants(process.pid))
                    memory.setdefault(role, []).append(mb)
                print(f"replicas={count}: ready in {ready_s:.1f} s; {len(latencies)} turns in {wall:.1f} s = "
                      f"{len(latencies) / wall:.1f} turns/s; p50={statistics.median(latencies):.0f} ms "
                      f"p95={percentile(latencies, 95):.0f} ms max={max(latencies):.0f} ms; "
                      f"failed={len(failures)} {dict(Counter(failures)) if failures else ''}")
                print("  rss per replica (MB): " + ", ".join(
                    f"{role} {', '.join(f'{mb:.0f}' for mb in values)}" for role, values in memory.items()))
        finally:
            with admin.connect() as connection:
                connection.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"))
                connection.execute(text(f"DROP DATABASE IF EXISTS {database}"))
            admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--replicas", help="comma-separated replica counts, e.g. 1,2 (hotline cluster)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if args.replicas:
        replicas_benchmark([int(n) for n in args.replicas.split(",")], args.concurrency, args.seconds)
        return 0

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
