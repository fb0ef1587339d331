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
    print(f"  voice:          {voice_line(settings)}")
    print("talk to it:      .venv/bin/hotline chat      (Ctrl-C here stops the servers)", flush=True)
    return run_until_stopped(stack)


def voice_line(settings) -> str:
    """What callers will hear, as the gateway reports it (/readyz)."""
    import requests

    try:
        tts = requests.get(f"{settings.gateway_url}/readyz", timeout=5).json().get("tts")
    except (requests.RequestException, ValueError):
        return "unknown (the gateway did not answer /readyz)"
    if not isinstance(tts, dict):
        return f"none: {tts}"
    if not tts.get("voice"):
        return f"NONE, the phone line is text only: {tts.get('warning')}"
    language = "Mandarin" if tts.get("mandarin") else f"not Mandarin ({tts.get('language')})"
    return f"{tts['engine']} {tts['voice']}, {language}, {tts.get('licence')}"


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
