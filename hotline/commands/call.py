"""`hotline call FILE.wav`: a recording through the running gateway; prints what happened."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import requests

from hotline.core.settings import Settings, get_settings


def call(settings: Settings, path: Path, out: str, session: Optional[str]) -> int:
    if not path.exists():
        print(f"error: no such file {path}", file=sys.stderr)
        return 2
    try:
        with path.open("rb") as handle:
            response = requests.post(f"{settings.gateway_url}/v1/voice/turn",
                                     files={"audio": (path.name, handle)},
                                     data={"session_id": session} if session else {}, timeout=120)
    except requests.ConnectionError:
        print(f"cannot reach the voice gateway at {settings.gateway_url}: start it with `make run`", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"error {response.status_code}: {response.json().get('detail', response.text)}", file=sys.stderr)
        return 1
    result = response.json()
    print(f"transcript: {result['transcript']}")
    print(f"intent:     {result['intent']} ({result['confidence'] or 0:.2f})")
    for reply in result["replies"]:
        print(f"reply:      {reply}")
    if result.get("audio_wav_base64"):
        import base64

        Path(out).write_bytes(base64.b64decode(result["audio_wav_base64"]))
        print(f"reply audio: {out}")
    else:
        print("reply audio: none (no text-to-speech voice loaded)")
    return 0


def cmd_call(args) -> int:
    return call(get_settings(), Path(args.file), args.out, args.session)


def register(sub) -> None:
    call = sub.add_parser("call", help="send a recording through the running voice gateway")
    call.add_argument("file")
    call.add_argument("--out", default="reply.wav", help="where to write the reply audio")
    call.add_argument("--session", help="conversation id (default: a new one)")
    call.set_defaults(func=cmd_call)
