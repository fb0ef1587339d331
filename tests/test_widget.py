"""The chat widget in real headless Chromium, driven over the DevTools protocol."""
from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time

import pytest
import requests
import websockets

from tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, ws) -> None:
        self.ws, self.ids = ws, itertools.count(1)

    async def call(self, method: str, **params):
        message_id = next(self.ids)
        await self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply.get("result", {})

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait(self, expression: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")


@pytest.fixture
def chromium(tmp_path):
    if not CHROMIUM:
        pytest.fail("chromium is not installed (make test installs it with apt-get)")
    port = free_port()
    process = subprocess.Popen([
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--user-data-dir={tmp_path / 'profile'}", f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (requests.RequestException, StopIteration, ValueError):
                time.sleep(0.2)
        else:
            raise RuntimeError("chromium did not start")
        yield page["webSocketDebuggerUrl"]
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_widget_chat_and_microphone_in_headless_chromium(stack, chromium, tmp_path):
    url = stack.settings.gateway_url + "/"

    async def session():
        async with websockets.connect(chromium, max_size=None) as ws:
            browser = Browser(ws)
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=url)
            await browser.wait("document.readyState === 'complete' && !!document.getElementById('text')")
            await browser.js("""
                document.getElementById('text').value = '我的iPhone激活不了';
                document.getElementById('form').requestSubmit();""")
            reply = await browser.wait("""(() => { const bots = document.querySelectorAll('.msg.bot');
                return bots.length >= 2 ? bots[bots.length - 1].textContent : null; })()""")
            user = await browser.js("document.querySelector('.msg.user').textContent")
            await browser.js("document.getElementById('mic').click()")
            mic_on = await browser.wait("document.getElementById('mic').classList.contains('on')")
            shot = await browser.call("Page.captureScreenshot", format="png")
            return reply, user, mic_on, shot["data"]

    reply, user, mic_on, screenshot = asyncio.run(session())
    assert user == "我的iPhone激活不了"
    assert "激活锁" in reply
    assert mic_on
    (tmp_path / "widget.png").write_bytes(__import__("base64").b64decode(screenshot))
    # the microphone opened a real stream to the gateway
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = requests.get(stack.settings.gateway_url + "/metrics").text
        if 'hotline_active_calls{transport="browser"} 1.0' in metrics:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("no browser stream reached the gateway")
