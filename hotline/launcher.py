"""Starts the action server and the Rasa server on loopback and waits until both answer."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import requests
import yaml
from sqlalchemy.engine import make_url

from hotline.settings import Settings
from hotline.training import rasa_env


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
    config: Dict[str, object] = {"type": "redis", "url": parsed.host or "127.0.0.1",
                                 "port": parsed.port or 6379, "db": int(parsed.database or 0),
                                 "key_prefix": "hotline"}
    if parsed.password:
        config["password"] = parsed.password
    return config


def endpoints_config(settings: Settings) -> Dict[str, object]:
    config: Dict[str, object] = {
        "action_endpoint": {"url": f"{settings.action_url}/webhook"},
        "tracker_store": tracker_store_config(settings.resolved_tracker_store_url()),
    }
    lock = lock_store_config(settings.lock_store_url)
    if lock:
        config["lock_store"] = lock
    return config


def write_endpoints(settings: Settings) -> Path:
    path = settings.var_dir / "endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# generated from hotline.settings; edit the environment, not this file\n"
                    + yaml.safe_dump(endpoints_config(settings), allow_unicode=True, sort_keys=False))
    return path


class Stack:
    """The two servers as child processes; `with Stack(settings) as stack:` starts and stops them."""

    def __init__(self, settings: Settings, gateway: bool = True) -> None:
        self.settings = settings
        self.gateway = gateway
        self.processes: Dict[str, subprocess.Popen] = {}
        self.logs_dir = settings.var_dir / "logs"

    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _env(self) -> Dict[str, str]:
        env = rasa_env()
        # Children see exactly this process's settings, whatever their origin (env, .env, code).
        for name, value in self.settings.dict().items():
            if value is not None:
                env[name.upper()] = str(value)
        env.update(SANIC_HOST=self.settings.host,
                   DATABASE_URL=self.settings.resolved_database_url(),
                   RASA_TOKEN=self.settings.resolved_rasa_token(),
                   HF_HUB_OFFLINE="1",
                   PYTHONPATH=str(self.settings.project_root) + os.pathsep + env.get("PYTHONPATH", ""))
        return env

    def _spawn(self, name: str, cmd: List[str], niceness: int = 0) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = (self.logs_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(cmd, cwd=self.settings.project_root, env=self._env(),
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                preexec_fn=(lambda: os.nice(niceness)) if niceness else None)

    def start(self) -> None:
        s = self.settings
        if not s.model_path.exists():
            raise SystemExit(f"no trained model at {s.model_path}: run `hotline train` first")
        endpoints = write_endpoints(s)
        self._spawn("action_server", [sys.executable, "-m", "rasa_sdk", "--actions", "actions",
                                      "--port", str(s.action_port)])
        self._spawn("rasa", [sys.executable, "-m", "hotline.rasa_server", "run", "--model", str(s.model_path),
                             "--enable-api", "--auth-token", s.resolved_rasa_token(),
                             "--interface", s.host, "--port", str(s.rasa_port),
                             "--endpoints", str(endpoints),
                             "--credentials", str(s.project_root / "bot" / "credentials.yml")])
        if self.gateway:
            # Slightly lower priority: on 2 cores the gateway's model loading (and later its long
            # Whisper runs) should not delay Rasa's start-up or its short text turns.
            self._spawn("gateway", [sys.executable, "-m", "voice_gateway"], niceness=5)
        self.wait_ready()

    def wait_ready(self) -> None:
        s = self.settings
        checks = {"action_server": f"{s.action_url}/health",
                  "rasa": f"{s.rasa_url}/status?token={s.resolved_rasa_token()}"}
        if self.gateway:
            checks["gateway"] = f"{s.gateway_url}/healthz"
        deadline = time.monotonic() + s.server_start_timeout
        pending = dict(checks)
        while pending:
            for name, url in list(pending.items()):
                process = self.processes[name]
                if process.poll() is not None:
                    self.stop()
                    tail = (self.logs_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
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

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def pids(self) -> Dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}
