"""`hotline run`: set up when needed, then the three servers on one machine until Ctrl-C."""
from __future__ import annotations

import signal
import sys
import time

from hotline.commands.setup import cmd_setup
from hotline.core.settings import get_settings


def cmd_run(args) -> int:
    from hotline.launcher import Stack

    if not args.skip_setup:
        cmd_setup(args)
    settings = get_settings()
    started = time.monotonic()
    stack = Stack(settings)
    stack.start()
    print(f"ready in {time.monotonic() - started:.1f} s")
    print(f"  Rasa server:    {settings.rasa_url}  (loopback only; API token in var/rasa_token)")
    print(f"  action server:  {settings.action_url}  (loopback only; Rasa's token in var/action_token)")
    print(f"  voice gateway:  {settings.gateway_url}  (chat widget /, API docs /docs, readiness /readyz)")
    print(f"  phone:          Twilio WS {settings.gateway_url.replace('http', 'ws')}/twilio/media-stream, "
          f"AudioSocket tcp://{settings.host}:{settings.audiosocket_port}")
    print(f"  logs:           {stack.logs_dir}")
    print("talk to it:      .venv/bin/hotline chat      (Ctrl-C here stops the servers)", flush=True)
    return run_until_stopped(stack)


def run_until_stopped(stack) -> int:
    """Wait for Ctrl-C or SIGTERM (a crashed server is restarted meanwhile), then stop the stack."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping and not stack.gave_up:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    if stack.gave_up:
        print(f"stopped: {stack.gave_up}", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    run = sub.add_parser("run", help="train if needed, seed the records, start the servers")
    run.add_argument("--skip-setup", action="store_true", help="start without checking the model and records")
    run.set_defaults(func=cmd_run)
