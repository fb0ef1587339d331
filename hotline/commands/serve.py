"""`hotline serve ROLE`: one role in the foreground, configured by the environment (containers)."""
from __future__ import annotations

from hotline.core.settings import get_settings


def cmd_serve(args) -> int:
    from hotline.serve import serve

    return serve(args.role, get_settings())


def register(sub) -> None:
    serve = sub.add_parser("serve", help="run one role in the foreground, configured by the environment (containers)")
    serve.add_argument("role", choices=["rasa", "actions", "gateway"])
    serve.set_defaults(func=cmd_serve)
