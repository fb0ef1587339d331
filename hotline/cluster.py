"""`hotline cluster --replicas N`: the production layout of deploy/compose.yaml on one machine without
containers. N action servers, N Rasa servers and N gateways on loopback ports behind one HAProxy
(Debian's package), sharing PostgreSQL (records and Rasa's tracker store) and Redis (Rasa's lock
store and the gateways' rate limits).

HAProxy listens where one server of each role would (GATEWAY_PORT, AUDIOSOCKET_PORT, RASA_PORT,
ACTION_PORT); the gateways reach Rasa, and Rasa the action servers, through it, so a replica that
dies is taken out by its health check and a request it refused is sent to another."""
from __future__ import annotations

import shutil
import socket
from typing import Dict, List

from sqlalchemy.engine import make_url

from hotline.launcher import Process, Stack, health_url, ready_url, role_command, role_env
from hotline.core.settings import INTERNAL_HOST, Settings

ROLE_ORDER = ("action_server", "rasa", "gateway")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((INTERNAL_HOST, 0))
        return probe.getsockname()[1]


def shared_store_problems(settings: Settings) -> List[str]:
    """Replicas share state only through real servers: SQLite files and in-memory stores do not do."""
    problems = []
    for name, url in (("DATABASE_URL", settings.resolved_database_url()),
                      ("TRACKER_STORE_URL", settings.resolved_tracker_store_url())):
        if make_url(url).get_backend_name() == "sqlite":
            problems.append(f"{name} must name a PostgreSQL database (postgresql://user@host:5432/db)")
    if not settings.lock_store_url:
        problems.append("LOCK_STORE_URL must name a Redis database (redis://host:6379/0)")
    return problems


def stats_socket(settings: Settings):
    return settings.var_dir / "haproxy.sock"


def haproxy_stats(settings: Settings) -> List[Dict[str, str]]:
    """HAProxy's `show stat` as rows (pxname, svname, status, wretr, wredis, …)."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(stats_socket(settings)))
        connection.sendall(b"show stat\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    header, *rows = [line for line in data.decode().splitlines() if line]
    names = header.lstrip("# ").split(",")
    return [dict(zip(names, row.split(","))) for row in rows]


def haproxy_config(settings: Settings, replicas: Dict[str, List[Settings]]) -> str:
    """One frontend per role where a single server would listen; health checks every second, and
    a request that found its server gone (refused, or closed without an answer) goes to another.
    A slow answer is not retried: a turn Rasa is still working on must not be sent twice."""
    s = settings
    lines = ["global", "    log stdout format raw local0 notice", "    maxconn 4096",
             f"    stats socket {stats_socket(s)} mode 600 level user  # show stat: retries, servers up", "",
             "defaults", "    log global", "    mode http", "    option httplog", "    timeout connect 2s",
             "    timeout client 60s", "    timeout server 60s", "    timeout tunnel 1h  # phone calls on WebSockets",
             "    timeout check 3s  # a busy replica answers its probe late, not never",
             "    option redispatch", "    retries 2", "    retry-on conn-failure empty-response", ""]

    def servers(role: str, port_of, check_port_of=None, path: str = "/") -> List[str]:
        out = [f"    option httpchk GET {path}", "    http-check expect status 200"]
        for index, replica in enumerate(replicas[role], start=1):
            check = f" port {check_port_of(replica)}" if check_port_of else ""
            out.append(f"    server {role}-{index} {INTERNAL_HOST}:{port_of(replica)} check inter 1s fall 3 rise 2{check}")
        return out

    lines += ["frontend actions", f"    bind {INTERNAL_HOST}:{s.action_port}", "    default_backend actions", "",
              "backend actions", "    balance roundrobin"]
    lines += servers("action_server", lambda r: r.action_port, path="/health") + [""]
    lines += ["frontend rasa", f"    bind {INTERNAL_HOST}:{s.rasa_port}", "    default_backend rasa", "",
              "backend rasa", "    balance roundrobin"]
    lines += servers("rasa", lambda r: r.rasa_port, path="/") + [""]
    if replicas.get("gateway"):
        peers = " ".join(n.strip() for n in s.audiosocket_allowed_peers.split(",") if n.strip())
        # The gateways see HAProxy's address: it passes the client's on (and drops any a client
        # wrote), for the per-client limits and attempt counts; Asterisk's allow-list is checked here.
        lines += ["frontend gateway_http", f"    bind {s.host}:{s.gateway_port}",
                  "    http-request del-header X-Forwarded-For", "    option forwardfor",
                  "    default_backend gateways", "",
                  "backend gateways", "    balance leastconn  # calls are long-lived WebSockets"]
        lines += servers("gateway", lambda r: r.gateway_port, path="/readyz") + [""]
        lines += ["frontend audiosocket", "    mode tcp", "    option tcplog", f"    bind {s.host}:{s.audiosocket_port}",
                  f"    tcp-request connection reject unless {{ src {peers} }}",
                  "    default_backend audiosocket", "",
                  "backend audiosocket", "    mode tcp", "    balance leastconn"]
        lines += servers("gateway", lambda r: r.audiosocket_port, lambda r: r.gateway_port, path="/readyz") + [""]
    return "\n".join(lines)


class Cluster(Stack):
    """`with Cluster(settings, replicas=2) as cluster:` starts every replica and HAProxy; a crashed
    replica is restarted like any child of a Stack. `settings` are the cluster's public face:
    its ports are HAProxy's, each replica gets free loopback ports of its own."""

    def __init__(self, settings: Settings, replicas: int = 2, gateway: bool = True) -> None:
        problems = shared_store_problems(settings)
        if problems:
            raise SystemExit("hotline cluster needs shared stores:\n  " + "\n  ".join(problems))
        haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
        if not haproxy:
            raise SystemExit("hotline cluster needs HAProxy: apt-get install haproxy (make setup does)")
        if settings.rate_limit_storage.startswith("memory://"):
            # Limits per client hold across the gateways only if they count in one place.
            settings = settings.copy(update={"rate_limit_storage": settings.lock_store_url})
        super().__init__(settings, gateway=gateway)
        self.haproxy, self.replica_count = haproxy, replicas
        roles = [r for r in ROLE_ORDER if r != "gateway" or gateway]
        self.replicas: Dict[str, List[Settings]] = {role: [self._replica(role) for _ in range(replicas)]
                                                    for role in roles}

    def _replica(self, role: str) -> Settings:
        s = self.settings
        ports = {"action_port": free_port(), "rasa_port": free_port(), "gateway_port": free_port(),
                 "audiosocket_port": free_port()}
        # Through HAProxy: the URLs the single-server layout would use, now its frontends.
        return Settings(**{**s.dict(), **ports, "host": INTERNAL_HOST, "rasa_url": s.rasa_url,
                           "action_server_url": s.action_server_url})

    def plan(self) -> List[Process]:
        config = self.settings.var_dir / "haproxy.cfg"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(haproxy_config(self.settings, self.replicas) + "\n")
        processes = [Process("haproxy", [self.haproxy, "-f", str(config), "-db"], {"PATH": "/usr/sbin:/usr/bin"},
                             health_url(self.settings, "gateway") if self.gateway else None)]
        for role, replicas in self.replicas.items():
            for index, replica in enumerate(replicas, start=1):
                processes.append(Process(f"{role}-{index}", role_command(replica, role), role_env(replica, role),
                                         ready_url(replica, role), niceness=5 if role == "gateway" else 0))
        return processes

    def replica_urls(self, role: str) -> List[str]:
        """Each replica's own address (tests and the benchmark talk to one replica on purpose)."""
        port = {"action_server": "action_port", "rasa": "rasa_port", "gateway": "gateway_port"}[role]
        return [f"http://{INTERNAL_HOST}:{getattr(r, port)}" for r in self.replicas[role]]
