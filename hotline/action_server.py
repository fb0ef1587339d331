"""`python -m hotline.action_server --port N`: Rasa SDK's action server, on loopback by default, that
runs an action only for a request bearing the action token (Rasa sends it: endpoints.yml).

The SDK's own entry point binds SANIC_HOST (0.0.0.0 by default), allows any CORS origin and has no
authentication; everything else (action loading, logging) is the SDK's."""
from __future__ import annotations

import argparse
import hmac
import logging
import os

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from sanic import response

from hotline.core.privacy import install_log_masking
from hotline.core.settings import INTERNAL_HOST

TOKEN_ENV = "HOTLINE_ACTION_TOKEN"


def build_app(token: str):
    app = create_app("actions", cors_origins=None)

    @app.on_request
    async def require_token(request):
        if request.path == "/health":
            return None  # probes carry no secret
        given = request.headers.get("authorization", "")
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return response.json({"error": "missing or wrong action token"}, status=401)
        return None

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=INTERNAL_HOST, help="loopback unless alone in a container")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    install_log_masking()  # identifiers never reach the action server's logs
    utils.configure_colored_logging("INFO")
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.update_sanic_log_level()
    token = os.environ.pop(TOKEN_ENV, "")  # out of the environment: actions need not see it
    if not token:
        raise SystemExit(f"{TOKEN_ENV} is not set: refusing to run actions for anyone")
    build_app(token).run(args.host, args.port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
