"""`python -m voice_gateway` (or `hotline serve gateway`): the gateway under uvicorn. The first
SIGTERM or SIGINT drains (voice_gateway.app.drain: live calls finish or hear a goodbye within
DRAIN_TIMEOUT_S), then uvicorn stops; a second one stops at once."""
import asyncio
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import uvicorn  # noqa: E402

from hotline.core.privacy import install_log_masking  # noqa: E402
from hotline.core.settings import get_settings  # noqa: E402
from voice_gateway.app import create_app, drain  # noqa: E402

logger = logging.getLogger("voice_gateway")


class DrainingServer(uvicorn.Server):
    """uvicorn closes every WebSocket at once on SIGTERM (code 1012): a phone call would be cut
    mid-sentence. Here the signal starts the drain first, and uvicorn's own shutdown follows it."""

    def __init__(self, config: uvicorn.Config, drain_timeout_s: float, notice_s: float) -> None:
        super().__init__(config)
        self.drain_timeout_s, self.notice_s = drain_timeout_s, notice_s
        self._loop = None
        self._draining = None

    async def startup(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig, frame) -> None:
        if self._draining is not None or self._loop is None or not self.started:
            super().handle_exit(sig, frame)  # a second signal, or not serving yet: stop now
            return
        logger.info("signal %s: draining before shutdown", sig)
        # Signal handlers run between bytecodes of the loop's thread: hand over to the loop.
        self._draining = sig
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain_then_exit(sig, frame)))

    async def _drain_then_exit(self, sig, frame) -> None:
        try:
            await drain(self.config.app, self.drain_timeout_s, self.notice_s)
        except Exception:  # stopping matters more than a clean goodbye
            logger.exception("drain failed")
        super().handle_exit(sig, frame)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_masking()
    settings = get_settings()
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.gateway_port, log_level="info",
                            ws="websockets", ws_max_size=settings.ws_max_bytes,
                            proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips)
    DrainingServer(config, settings.drain_timeout_s, settings.drain_notice_s).run()


if __name__ == "__main__":
    main()
