"""`hotline serve rasa|actions|gateway`: one role in the foreground, configured only by the
environment: the entry point of the container image (deploy/Dockerfile), one command per role.

The process replaces itself with the role's server (`exec`), so the orchestrator's SIGTERM reaches
the server itself: the gateway then drains (voice_gateway/__main__.py), Rasa and the action server
stop between requests. Unlike `hotline run`, the role listens on HOST (0.0.0.0 in a container),
and the shared secrets must be given: replicas cannot each invent their own token."""
from __future__ import annotations

import os
from typing import Dict, List

from hotline.launcher import role_command, role_env
from hotline.core.settings import Settings

ROLE_NAMES = {"rasa": "rasa", "actions": "action_server", "gateway": "gateway"}
# The secrets each role needs from the environment (or var/ files on one host, see `check_secrets`).
NEEDED_SECRETS = {"rasa": ("rasa_token", "action_token"), "action_server": ("action_token",),
                  "gateway": ("rasa_token", "trainer_token")}  # the trainer page works on every replica


def missing_secrets(settings: Settings, role: str) -> List[str]:
    """Token settings this role needs that are neither set nor kept in var/ (several replicas of a
    role would each make a different one: Rasa would refuse the gateway, or actions Rasa)."""
    return [name.upper() for name in NEEDED_SECRETS[role]
            if not getattr(settings, name) and not (settings.var_dir / name).exists()]


def serve_command(settings: Settings, role: str) -> tuple:
    """(argv, env) of the role, bound to HOST."""
    command = role_command(settings, role, bind=settings.host)
    env: Dict[str, str] = role_env(settings, role)
    return command, env


def serve(role_name: str, settings: Settings) -> int:
    role = ROLE_NAMES[role_name]
    missing = missing_secrets(settings, role)
    if missing:
        raise SystemExit(f"hotline serve {role_name}: set {', '.join(missing)} in the environment "
                         "(every replica must share it)")
    if role == "rasa" and not settings.model_path.exists():
        raise SystemExit(f"no trained model at {settings.model_path}: the image builds it with `hotline train`")
    command, env = serve_command(settings, role)
    os.execve(command[0], command, env)
    return 0  # not reached
