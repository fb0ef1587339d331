"""`hotline cluster --replicas N`: replicas of every server behind HAProxy on one machine."""
from __future__ import annotations

import time

from hotline.commands.run import run_until_stopped
from hotline.commands.setup import cmd_setup
from hotline.core.settings import get_settings


def cmd_cluster(args) -> int:
    from hotline.cluster import Cluster

    if not args.skip_setup:
        cmd_setup(args)
    settings = get_settings()
    started = time.monotonic()
    cluster = Cluster(settings, replicas=args.replicas, gateway=not args.no_gateway)
    cluster.start()
    print(f"ready in {time.monotonic() - started:.1f} s: {args.replicas} of each role behind HAProxy")
    print(f"  voice gateway:  {settings.gateway_url}  (HAProxy; AudioSocket tcp://{settings.host}:{settings.audiosocket_port})")
    for role in cluster.replicas:
        print(f"  {role + ':':<15} {', '.join(cluster.replica_urls(role))}")
    print(f"  HAProxy config: {settings.var_dir / 'haproxy.cfg'}   logs: {cluster.logs_dir}", flush=True)
    return run_until_stopped(cluster)


def register(sub) -> None:
    cluster = sub.add_parser("cluster", help="N replicas of each server behind HAProxy, on PostgreSQL and Redis")
    cluster.add_argument("--replicas", type=int, default=2)
    cluster.add_argument("--no-gateway", action="store_true", help="Rasa and action servers only")
    cluster.add_argument("--skip-setup", action="store_true", help="start without checking the model and records")
    cluster.set_defaults(func=cmd_cluster)
