"""`hotline chat`: talk to the running bot through Rasa's REST channel."""
from __future__ import annotations

import sys
import uuid
from typing import Dict, List, Optional

import requests

from hotline.core.settings import Settings


def send(settings: Settings, sender: str, text: str, timeout: float = 30) -> List[Dict[str, object]]:
    response = requests.post(f"{settings.rasa_url}/webhooks/rest/webhook",
                             json={"sender": sender, "message": text}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def chat(settings: Settings, sender: Optional[str] = None) -> int:
    sender = sender or f"cli-{uuid.uuid4().hex[:8]}"
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"连接 {settings.rasa_url}（会话 {sender}）。输入 /quit 退出。")
    while True:
        try:
            line = input("您：" if interactive else "")
        except (EOFError, KeyboardInterrupt):
            break
        if line.strip() in {"/quit", "/exit"}:
            break
        if not interactive:
            print(f"您：{line}")
        try:
            messages = send(settings, sender, line)
        except requests.ConnectionError:
            print(f"无法连接到 {settings.rasa_url}：请先在另一个终端运行 `make run`。", file=sys.stderr)
            return 1
        except requests.RequestException as error:
            print(f"请求失败：{error}", file=sys.stderr)
            continue
        for message in messages:
            if message.get("text"):
                print(f"助手：{message['text']}")
    return 0
