import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import uvicorn  # noqa: E402

from actions.privacy import install_log_masking  # noqa: E402
from hotline.settings import get_settings  # noqa: E402
from voice_gateway.app import create_app  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_masking()
    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.gateway_port, log_level="info",
                ws="websockets", ws_max_size=settings.ws_max_bytes,
                proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips)
