"""`hotline chat [--sender ID]`: talk to the running bot in the terminal."""
from __future__ import annotations

from hotline.core.settings import get_settings


def cmd_chat(args) -> int:
    from hotline.chat import chat

    return chat(get_settings(), sender=args.sender)


def register(sub) -> None:
    chat = sub.add_parser("chat", help="talk to the running bot in the terminal")
    chat.add_argument("--sender", help="conversation id (default: a new one)")
    chat.set_defaults(func=cmd_chat)
