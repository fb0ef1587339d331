"""The embeddable chat widget in real headless Chromium, driven over the DevTools protocol: a
support site on another origin embeds widget.js (with CSS that tries to break it), a warranty
lookup with the buttons, a handoff, reload and history, a new conversation, keyboard and ARIA,
contrast, a phone-sized screen; a site that is not in ALLOWED_ORIGINS is refused; the microphone
opens a real stream."""
from __future__ import annotations

import asyncio
import base64
import http.server
import threading
import itertools
import json
import shutil
import subprocess
import time

import pytest
import requests
import websockets
from websockets.exceptions import InvalidStatusCode

from tests.conftest import ALLOWED_WIDGET_ORIGIN, WIDGET_HOST_PORT, free_port, show
from tests.test_conversations import UNCLEAR

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



# --- a support site on another origin -----------------------------------------------------------

HOSTILE_CSS = """
  * { all: unset !important; }
  body * { visibility: hidden !important; font-size: 6px !important; transform: scale(0.5) !important; }
  button, input, section, div { display: none !important; color: red !important; background: red !important; }
"""


@pytest.fixture(scope="module")
def support_site(stack):
    """A plain static site that embeds the widget with one script tag, on WIDGET_HOST_PORT."""
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1"><title>支持</title>
      <style>{HOSTILE_CSS}</style></head>
      <body><h1>某经销商的支持页面</h1><p>正文</p>
      <script src="{stack.settings.gateway_url}/widget.js" data-title="测试支持" async></script></body></html>"""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", WIDGET_HOST_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield
    server.shutdown()


IN_WIDGET = "const r = document.querySelector('hotline-widget').shadowRoot;"


def widget_js(body: str) -> str:
    return f"(() => {{ {IN_WIDGET} {body} }})()"


MESSAGES = widget_js("return [...r.querySelectorAll('.msg')].map(m => [m.className.split(' ')[1], m.textContent]);")
BOT_COUNT = widget_js("return r.querySelectorAll('.msg.bot').length;")
# WCAG 2 contrast of an element's text against the first opaque background behind it.
CONTRAST = """
  const lum = (rgb) => { const c = rgb.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  const background = (el) => { for (let e = el; e; e = e.parentElement || (e.getRootNode() && e.getRootNode().host)) {
      const bg = getComputedStyle(e).backgroundColor; const a = bg.match(/[\\d.]+/g);
      if (a && (a.length < 4 || Number(a[3]) > 0.9)) return bg; } return 'rgb(255, 255, 255)'; };
  const ratio = (el) => { const a = lum(getComputedStyle(el).color), b = lum(background(el));
      return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
"""


async def chat_turn(browser, text: str) -> None:
    before = await browser.js(BOT_COUNT)
    await browser.js(widget_js(f"r.getElementById('text').value = {json.dumps(text)}; r.querySelector('form').requestSubmit();"))
    await browser.wait(widget_js(f"return r.querySelectorAll('.msg.bot').length > {before} && !r.querySelector('.typing').textContent;"), 90)


async def press(browser, key: str, code: str, key_code: int, text: str = "") -> None:
    """A real key press, as the keyboard sends it (not a synthetic DOM event)."""
    await browser.call("Input.dispatchKeyEvent", type="keyDown" if text else "rawKeyDown", key=key, code=code,
                       windowsVirtualKeyCode=key_code, text=text)
    await browser.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=key_code)


def test_a_site_embeds_the_widget_and_a_warranty_lookup_survives_a_reload(stack, support_site, chromium, tmp_path, request):
    url = f"{ALLOWED_WIDGET_ORIGIN}/help.html"

    async def session():
        async with websockets.connect(chromium, max_size=None) as ws:
            browser = Browser(ws)
            await browser.call("Page.enable")
            await browser.call("Emulation.setDeviceMetricsOverride", width=1024, height=720, deviceScaleFactor=1, mobile=False)
            await browser.call("Page.navigate", url=url)
            await browser.wait("!!document.querySelector('hotline-widget') && !!document.querySelector('hotline-widget').shadowRoot")
            # the page's CSS hides every element of its own, and none of the widget's
            launcher_box = await browser.js(widget_js(
                "const b = r.querySelector('.launcher').getBoundingClientRect(); return [b.width, b.height];"))
            visible = await browser.js(widget_js("return getComputedStyle(r.querySelector('.launcher')).visibility;"))
            page_h1 = await browser.js("getComputedStyle(document.querySelector('h1')).visibility")
            # keyboard: Tab-reachable launcher, Enter opens the dialog with the input focused
            await browser.js(widget_js("r.querySelector('.launcher').focus();"))
            await press(browser, "Enter", "Enter", 13, "\r")
            await browser.wait(widget_js("return !r.querySelector('.panel').hidden && r.activeElement && r.activeElement.id === 'text';"))
            aria = await browser.js(widget_js("""return {dialog: r.querySelector('.panel').getAttribute('role'),
                labelled: r.getElementById(r.querySelector('.panel').getAttribute('aria-labelledby')).textContent,
                log: r.querySelector('.log').getAttribute('role'), live: r.querySelector('.log').getAttribute('aria-live'),
                expanded: r.querySelector('.launcher').getAttribute('aria-expanded'),
                unnamed: [...r.querySelectorAll('button')].filter(b => !(b.getAttribute('aria-label') || b.textContent.trim())).length,
                label: !!r.querySelector('label[for=text]')};"""))
            await browser.wait(widget_js("return r.querySelectorAll('.choices button').length > 0;"))
            # the observer records the typing indicator while a turn is in flight
            await browser.js(widget_js("""window.__typing = []; new MutationObserver(() => window.__typing.push(
                r.querySelector('.typing').textContent)).observe(r.querySelector('.typing'), {childList: true, characterData: true, subtree: true});"""))
            # the warranty lookup: a suggestion button, then the serial typed
            before = await browser.js(BOT_COUNT)
            await browser.js(widget_js("[...r.querySelectorAll('.choices button')].find(b => b.textContent === '查保修').click();"))
            await browser.wait(widget_js(f"return r.querySelectorAll('.msg.bot').length > {before};"), 90)
            asked = (await browser.js(MESSAGES))[-1][1]
            await chat_turn(browser, "C39XK1ABHG7F")
            warranty = (await browser.js(MESSAGES))[-1][1]
            typing_seen = await browser.js("window.__typing")
            # an unsure question: the top two topics as buttons; the first is pressed
            await chat_turn(browser, UNCLEAR)
            offered = await browser.js(widget_js("return [...r.querySelectorAll('.choices button')].map(b => b.textContent);"))
            before = await browser.js(BOT_COUNT)
            await browser.js(widget_js("r.querySelector('.choices button').click();"))
            await browser.wait(widget_js(f"return r.querySelectorAll('.msg.bot').length > {before};"), 90)
            await chat_turn(browser, "转人工")
            handoff = await browser.js(widget_js("return r.querySelector('.status').textContent;"))
            contrast = await browser.js(CONTRAST + widget_js("""return ['.user', '.bot', 'header h2', '.send', '.privacy', '.status', '.note']
                .map(s => r.querySelector(s)).filter(Boolean).map(e => [e.className || e.tagName, ratio(e)]);"""))
            shot = await browser.call("Page.captureScreenshot", format="png")
            before_reload = await browser.js(MESSAGES)
            session_id = await browser.js("Object.entries(localStorage).find(([k]) => k.startsWith('hotline-widget-session@'))[1]")
            # a reload: the panel opens again with the conversation fetched from the gateway
            await browser.call("Page.reload")
            await browser.wait(widget_js(f"return r && r.querySelectorAll('.msg').length >= {len(before_reload) - 1};"), 30)
            after_reload = await browser.js(MESSAGES)
            handoff_after = await browser.js(widget_js("return r.querySelector('.status').textContent;"))
            # Escape closes it and gives the focus back to the launcher
            await browser.js(widget_js("r.getElementById('text').focus();"))
            await press(browser, "Escape", "Escape", 27)
            closed = await browser.wait(widget_js("return r.querySelector('.panel').hidden && r.activeElement === r.querySelector('.launcher');"))
            # a new conversation starts empty with another id
            await browser.js(widget_js("r.querySelector('.launcher').click(); r.querySelector('.new').click();"))
            fresh = await browser.js(MESSAGES)
            new_id = await browser.js("Object.entries(localStorage).find(([k]) => k.startsWith('hotline-widget-session@'))[1]")
            # a phone-sized screen: the panel fills it
            await browser.call("Emulation.setDeviceMetricsOverride", width=375, height=667, deviceScaleFactor=2, mobile=True)
            phone = await browser.js(widget_js("const b = r.querySelector('.panel').getBoundingClientRect(); return [b.left, b.top, b.width, b.height];"))
            phone_shot = await browser.call("Page.captureScreenshot", format="png")
            return locals()

    got = asyncio.run(session())
    shot, phone_shot = tmp_path / "widget-open.png", tmp_path / "widget-phone.png"
    shot.write_bytes(base64.b64decode(got["shot"]["data"]))
    phone_shot.write_bytes(base64.b64decode(got["phone_shot"]["data"]))
    show(request, [f"widget screenshots: {shot} {phone_shot}"])
    assert got["launcher_box"][0] >= 50 and got["visible"] == "visible" and got["page_h1"] == "hidden"
    assert got["aria"] == {"dialog": "dialog", "labelled": "测试支持", "log": "log", "live": "polite",
                           "expanded": "true", "unnamed": 0, "label": True}
    assert "序列号" in got["asked"] and "iPhone 15 Pro" in got["warranty"]
    assert "助手正在输入…" in got["typing_seen"]
    assert len(got["offered"]) == 3 and got["offered"][-1]  # the top two and "neither"
    users = [text for kind, text in got["before_reload"] if kind == "user"]
    assert users[:2] == ["查保修", "C39XK1ABHG7F"] and got["offered"][0] in users  # a button shows its title
    assert "案例编号" in got["handoff"] and got["handoff"] == got["handoff_after"]
    assert all(ratio >= 4.5 for _, ratio in got["contrast"]), got["contrast"]  # WCAG AA, normal text
    # the same conversation (the greeting is the widget's own, not part of it)
    assert got["after_reload"] == [m for m in got["before_reload"][1:] if m[0] != "note"]
    assert got["closed"]
    assert got["fresh"] == [["bot", got["fresh"][0][1]]] and got["new_id"] != got["session_id"]
    assert got["phone"] == [0, 0, 375, 667]


def test_a_site_that_is_not_allowed_is_refused(stack, support_site, chromium):
    gateway = stack.settings.gateway_url
    # the same page from another origin (127.0.0.1 instead of localhost): the widget says so
    async def session():
        async with websockets.connect(chromium, max_size=None) as ws:
            browser = Browser(ws)
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=f"http://127.0.0.1:{WIDGET_HOST_PORT}/help.html")
            await browser.wait("!!document.querySelector('hotline-widget')")
            await browser.js(widget_js("r.querySelector('.launcher').click();"))
            return await browser.wait(widget_js("return [...r.querySelectorAll('.note')].map(n => n.textContent).join('|');"))

    assert "未被允许" in asyncio.run(session())
    # the same rules for any client that says where it comes from
    refused = requests.post(f"{gateway}/v1/chat", json={"text": "你好"}, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    allowed = requests.post(f"{gateway}/v1/chat", json={"text": "你好"}, headers={"Origin": ALLOWED_WIDGET_ORIGIN})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED_WIDGET_ORIGIN
    preflight = requests.options(f"{gateway}/v1/chat", headers={"Origin": ALLOWED_WIDGET_ORIGIN,
                                 "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]
    assert requests.options(f"{gateway}/v1/chat", headers={"Origin": "http://evil.example",
                            "Access-Control-Request-Method": "POST"}).status_code == 400
    assert "access-control-allow-origin" not in requests.get(f"{gateway}/widget.js").headers  # a script tag needs none

    async def handshakes():
        stream = gateway.replace("http", "ws") + "/v1/voice/stream"
        try:
            async with websockets.connect(stream, origin="http://evil.example"):
                refused = None
        except InvalidStatusCode as error:
            refused = error.status_code
        async with websockets.connect(stream, origin=ALLOWED_WIDGET_ORIGIN) as ws:
            ready = json.loads(await ws.recv())
        return refused, ready

    refused_ws, ready = asyncio.run(handshakes())
    assert refused_ws == 403 and ready["type"] == "ready"


def test_history_is_read_back_only_for_widget_conversations(stack):
    gateway = stack.settings.gateway_url
    session = "web-" + "A" * 22
    requests.post(f"{gateway}/v1/chat", json={"text": "帮我查一下保修", "session_id": session}).raise_for_status()
    history = requests.post(f"{gateway}/v1/chat/history", json={"session_id": session}).json()
    assert [m["from"] for m in history["messages"]] == ["user", "bot"] and "序列号" in history["messages"][1]["text"]
    for other in ("CA" + "0" * 32, "chat-123456789012", "web-short", str(__import__("uuid").uuid4())):
        assert requests.post(f"{gateway}/v1/chat/history", json={"session_id": other}).status_code == 404
    assert requests.get(f"{gateway}/v1/chat/history", params={"session_id": session}).status_code == 405  # not in URLs


def test_the_microphone_opens_a_stream_from_the_gateways_own_page(stack, chromium):
    async def session():
        async with websockets.connect(chromium, max_size=None) as ws:
            browser = Browser(ws)
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=stack.settings.gateway_url + "/")
            # the gateway's own page embeds the widget open
            await browser.wait(widget_js("return r && !r.querySelector('.panel').hidden;"))
            await chat_turn(browser, "我的iPhone激活不了")
            reply = (await browser.js(MESSAGES))[-1][1]
            await browser.js(widget_js("r.querySelector('.mic').click();"))
            pressed = await browser.wait(widget_js("return r.querySelector('.mic').getAttribute('aria-pressed') === 'true' && "
                                                   "[...r.querySelectorAll('.note')].map(n => n.textContent).join('|');"))
            return reply, pressed

    reply, notes = asyncio.run(session())
    assert "激活锁" in reply
    assert "正在听" in notes and "只提供文字" not in notes  # a voice is loaded: replies are spoken
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if 'hotline_active_calls{transport="browser"} 1.0' in requests.get(stack.settings.gateway_url + "/metrics").text:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("no browser stream reached the gateway")


def test_only_the_current_unexpired_session_is_read_back():
    from voice_gateway.history import current_session

    old = [{"event": "session_started", "timestamp": 1000.0}, {"event": "user", "text": "旧的", "timestamp": 1001.0}]
    new = [{"event": "session_started", "timestamp": 9000.0}, {"event": "user", "text": "新的", "timestamp": 9001.0}]
    assert current_session(old + new, expiry_s=3600, now=9100.0) == new  # not the earlier session
    assert current_session(old + new, expiry_s=3600, now=9001.0 + 3601) == []  # silent too long: nothing
    assert current_session([], expiry_s=3600, now=1.0) == []


def test_text_that_looks_like_html_stays_text_in_the_widget_and_in_its_history(stack, chromium):
    """Whatever a message says is drawn as text (and links only for http/https), live and read back."""
    payload = '<img src=x onerror="window.__pwned=1">点我 javascript:alert(1)'

    async def session():
        async with websockets.connect(chromium, max_size=None) as ws:
            browser = Browser(ws)
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=stack.settings.gateway_url + "/")
            await browser.wait(widget_js("return r && !r.querySelector('.panel').hidden && r.querySelectorAll('.msg').length > 0;"))
            await chat_turn(browser, payload)
            live = await browser.js(widget_js("return [r.querySelectorAll('img, script, iframe').length, "
                                              "[...r.querySelectorAll('.msg.user')].pop().textContent];"))
            await browser.call("Page.reload")
            await browser.wait(widget_js("return r && [...r.querySelectorAll('.msg.user')].length > 0;"))
            read_back = await browser.js(widget_js("return [r.querySelectorAll('img, script, iframe').length, "
                                                   "[...r.querySelectorAll('.msg.user')].pop().textContent, "
                                                   "[...r.querySelectorAll('a')].map(a => a.href)];"))
            return live, read_back, await browser.js("window.__pwned === undefined")

    live, read_back, safe = asyncio.run(session())
    assert live == [0, payload] and read_back[:2] == [0, payload] and safe
    assert all(href.startswith(("http://", "https://")) for href in read_back[2])


def test_a_conversation_reads_back_with_button_titles_live_buttons_and_the_handoff():
    from voice_gateway.history import is_widget_session, transcript

    events = [
        {"event": "action", "name": "action_session_start"},
        {"event": "user", "text": "问题"},
        {"event": "bot", "text": "您想咨询的是下面哪一项？", "data": {"buttons": [
            {"title": "查保修", "payload": "/warranty"}, {"title": "都不是", "payload": "/deny"}]}},
        {"event": "user", "text": "/warranty"},
        {"event": "bot", "text": "请告诉我序列号", "data": {}},
        {"event": "user", "text": "转人工"},
        {"event": "bot", "text": "已创建服务案例", "data": {"custom": {"handoff": True, "case_number": "123456789",
                                                                  "skill_group": "general", "summary": "…"}}},
        {"event": "bot", "text": "还需要别的帮助吗？", "data": {"buttons": [{"title": "是", "payload": "/affirm"}]}},
    ]
    read = transcript(events)
    assert [(m["from"], m["text"]) for m in read["messages"]] == [
        ("user", "问题"), ("bot", "您想咨询的是下面哪一项？"), ("user", "查保修"), ("bot", "请告诉我序列号"),
        ("user", "转人工"), ("bot", "已创建服务案例"), ("bot", "还需要别的帮助吗？")]
    assert [m.get("buttons") for m in read["messages"] if m["from"] == "bot"] == [[], [], [], [{"title": "是", "payload": "/affirm"}]]
    assert read["handoff"] == {"case_number": "123456789", "skill_group": "general"}  # not the summary
    assert is_widget_session("web-" + "a1_-" * 6) and not is_widget_session("web-" + "a" * 21)
    assert not is_widget_session("CA" + "0" * 32) and not is_widget_session("web-" + "a" * 22 + "/")
