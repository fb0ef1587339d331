/*
 * The Apple-products support assistant as a widget for any site:
 *   <script src="https://GATEWAY/widget.js" data-title="苹果产品支持助手" async></script>
 * Options (data-*): title, open ("true": open the panel at once), position ("left" or "right").
 *
 * Everything is drawn inside a shadow root: the page's CSS cannot reach in, and none of the
 * widget's reaches out. It talks only to the gateway it was loaded from (which must list the
 * page's origin in ALLOWED_ORIGINS), holds no token, and keeps only a random conversation id in
 * localStorage, so that the conversation survives a reload or another page of the same site.
 */
(() => {
  "use strict";
  if (window.__hotlineWidget) return;  // embedded twice: one widget
  window.__hotlineWidget = true;

  const script = document.currentScript;
  const gateway = new URL(script ? script.src : "/widget.js", location.href).origin;
  const options = script ? script.dataset : {};
  const title = options.title || "苹果产品支持助手";
  const storageKey = `hotline-widget-session@${gateway}`, openKey = `hotline-widget-open@${gateway}`;

  const TEXT = {
    open: `打开${title}`,
    close: "关闭对话窗口",
    newConversation: "新对话",
    welcome: "您好，我是苹果产品支持智能助手。请简单说说您遇到的问题，也可以点下面的常见问题。",
    privacy: "请勿在对话中提供密码、验证码或银行卡信息；苹果官方客服绝不会主动索要这些信息。",
    placeholder: "请输入问题，例如：手机激活不了",
    send: "发送",
    micOn: "开始语音输入",
    micOff: "结束语音输入",
    typing: "助手正在输入…",
    unreachable: "暂时连接不上客服助手，请检查网络后再试。",
    refused: "此网站未被允许使用该客服助手。",
    busy: "消息发送得太频繁了，请稍等片刻再试。",
    tooLong: "消息太长了，请分几次发送。",
    noSpeech: "语音输入暂不可用，请直接输入文字。",
    textOnly: "当前只提供文字回复：回答会显示在这里，不会朗读。",
    micDenied: "无法使用麦克风：",
    listening: "正在听，请说话；再点一次麦克风结束。",
    handoff: (c) => `已为您转接人工顾问${c ? `，案例编号 ${String(c).replace(/(\d{3})(?=\d)/g, "$1 ")}` : ""}。`,
  };
  // Ordinary words, not intents: they go through the classifier like anything typed.
  const SUGGESTIONS = ["查保修", "查订单", "预约维修", "手机激活不了", "转人工"];

  // Drawn, not emoji: a page's visitor may have no emoji font.
  const ICON = {
    chat: '<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>',
    mic: '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11h-2z"/></svg>',
  };
  const CSS = `
    :host { all: initial; }
    * { box-sizing: border-box; font-family: system-ui, -apple-system, "PingFang SC", "Noto Sans CJK SC", sans-serif; }
    .launcher { display: flex; align-items: center; justify-content: center; position: fixed; bottom: 20px; ${options.position === "left" ? "left" : "right"}: 20px;
      width: 60px; height: 60px; border-radius: 50%; border: 0; background: #0060c0; color: #fff;
      font-size: 26px; cursor: pointer; box-shadow: 0 4px 16px rgba(0,0,0,.25); z-index: 2147483000; }
    .launcher:focus-visible, button:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #ffbf00; outline-offset: 2px; }
    .panel { position: fixed; bottom: 92px; ${options.position === "left" ? "left" : "right"}: 20px;
      width: 380px; height: min(620px, calc(100vh - 120px)); background: #fff; color: #1d1d1f;
      border-radius: 14px; box-shadow: 0 8px 32px rgba(0,0,0,.3); display: flex; flex-direction: column;
      overflow: hidden; z-index: 2147483001; font-size: 15px; line-height: 1.5; }
    .panel[hidden] { display: none; }
    header { display: flex; align-items: center; gap: 8px; padding: 10px 12px; background: #0060c0; color: #fff; }
    header h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 600; }
    header button { background: transparent; color: #fff; border: 1px solid rgba(255,255,255,.7); border-radius: 8px;
      padding: 4px 10px; font-size: 13px; cursor: pointer; }
    .privacy { margin: 0; padding: 6px 12px; font-size: 12px; color: #1d1d1f; background: #fff4d6; }
    .status { margin: 0; padding: 6px 12px; font-size: 13px; color: #0b5d1e; background: #e3f5e7; }
    .status:empty { display: none; }
    .log { flex: 1; overflow-y: auto; padding: 12px; }
    .msg { margin: 6px 0; padding: 8px 12px; border-radius: 12px; max-width: 85%; white-space: pre-wrap; word-break: break-word; }
    .user { background: #0060c0; color: #fff; margin-left: auto; }
    .bot { background: #f0f0f3; color: #1d1d1f; }
    .bot a { color: #0050a0; }
    .note { color: #555; font-size: 13px; text-align: center; margin: 8px 0; }
    .choices { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
    .choices button { background: #fff; color: #0050a0; border: 1px solid #0060c0; border-radius: 16px;
      padding: 5px 12px; font-size: 14px; cursor: pointer; }
    .typing { margin: 0; padding: 0 12px 6px; font-size: 13px; color: #555; }
    .typing:empty { display: none; }
    form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #ddd; }
    input { flex: 1; min-width: 0; padding: 9px 10px; border: 1px solid #767676; border-radius: 8px; font-size: 15px; color: #1d1d1f; background: #fff; }
    form button { padding: 9px 12px; border: 0; border-radius: 8px; background: #0060c0; color: #fff; font-size: 15px; cursor: pointer; }
    form button.mic[aria-pressed="true"] { background: #b00020; }
    .sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); border: 0; }
    @media (max-width: 480px) {
      .panel { inset: 0; width: 100vw; height: 100vh; height: 100dvh; border-radius: 0; bottom: 0; right: 0; left: 0; }
    }`;

  // An element name no page styles; inline !important resets beat even the page's !important
  // rules (e.g. `body * { visibility: hidden !important }` would otherwise be inherited inside).
  const host = document.createElement("hotline-widget");
  host.style.setProperty("all", "initial", "important");
  host.style.setProperty("display", "block", "important");
  const root = host.attachShadow({mode: "open"});
  root.innerHTML = `<style>${CSS}</style>
    <button class="launcher" type="button" aria-haspopup="dialog" aria-expanded="false" aria-controls="panel">${ICON.chat}</button>
    <section class="panel" id="panel" role="dialog" aria-labelledby="title" hidden>
      <header>
        <h2 id="title"></h2>
        <button class="new" type="button"></button>
        <button class="close" type="button">✕</button>
      </header>
      <p class="privacy"></p>
      <p class="status" role="status"></p>
      <div class="log" role="log" aria-live="polite" aria-relevant="additions" tabindex="0"></div>
      <p class="typing" role="status" aria-live="polite"></p>
      <form>
        <label class="sr-only" for="text">输入问题</label>
        <input id="text" autocomplete="off" maxlength="1000">
        <button class="send" type="submit"></button>
        <button class="mic" type="button" aria-pressed="false">${ICON.mic}</button>
      </form>
    </section>`;
  const $ = (selector) => root.querySelector(selector);
  const launcher = $(".launcher"), panel = $(".panel"), log = $(".log"), input = $("#text");
  const typing = $(".typing"), status = $(".status"), mic = $(".mic");
  launcher.setAttribute("aria-label", TEXT.open);
  $("#title").textContent = title;
  $(".new").textContent = TEXT.newConversation;
  $(".close").setAttribute("aria-label", TEXT.close);
  $(".privacy").textContent = TEXT.privacy;
  $(".send").textContent = TEXT.send;
  mic.setAttribute("aria-label", TEXT.micOn);
  input.placeholder = TEXT.placeholder;

  // --- the conversation id -------------------------------------------------------------------
  const store = (() => {
    try { localStorage.setItem(storageKey + "-probe", "1"); localStorage.removeItem(storageKey + "-probe"); return localStorage; }
    catch (e) { const memory = {}; return {getItem: (k) => memory[k] || null, setItem: (k, v) => { memory[k] = v; }}; }
  })();
  const newSessionId = () => {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "web-" + btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  let session = store.getItem(storageKey);
  if (!/^web-[A-Za-z0-9_-]{22,64}$/.test(session || "")) { session = newSessionId(); store.setItem(storageKey, session); }

  // --- drawing messages ----------------------------------------------------------------------
  const scroll = () => { log.scrollTop = log.scrollHeight; };
  const withLinks = (element, text) => {  // http(s) links become <a>; everything else stays text
    text.split(/(https?:\/\/[^\s，。；）)】]+)/).forEach((part, i) => {
      if (i % 2 === 1) {
        const a = document.createElement("a");
        a.href = part; a.textContent = part; a.target = "_blank"; a.rel = "noopener noreferrer";
        element.appendChild(a);
      } else if (part) element.appendChild(document.createTextNode(part));
    });
  };
  const add = (text, who) => {
    const div = document.createElement("div");
    div.className = `msg ${who}`;
    if (who === "bot") withLinks(div, text); else div.textContent = text;
    log.appendChild(div);
    scroll();
    return div;
  };
  const note = (text) => { const p = add(text, "note"); p.className = "note"; return p; };
  const clearChoices = () => root.querySelectorAll(".choices").forEach((old) => old.remove());
  const showChoices = (choices) => {  // [{title, payload}]: payload is what is sent
    if (!choices || !choices.length) return;
    const row = document.createElement("div");
    row.className = "choices";
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "可选回复");
    choices.forEach((choice) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = choice.title;
      button.addEventListener("click", () => send(choice.payload, choice.title));
      row.appendChild(button);
    });
    log.appendChild(row);
    scroll();
  };
  const showHandoff = (handoff) => { if (handoff) status.textContent = TEXT.handoff(handoff.case_number); };
  const welcome = () => {
    add(TEXT.welcome, "bot");
    showChoices(SUGGESTIONS.map((s) => ({title: s, payload: s})));
  };

  // --- talking to the gateway ----------------------------------------------------------------
  const failure = (statusCode) => statusCode === 403 ? TEXT.refused : statusCode === 429 ? TEXT.busy
    : statusCode === 422 ? TEXT.tooLong : TEXT.unreachable;
  let inFlight = 0;
  const setTyping = (delta) => { inFlight += delta; typing.textContent = inFlight > 0 ? TEXT.typing : ""; };

  const send = async (text, shown) => {
    clearChoices();  // old choices expire with the next message
    add(shown, "user");
    setTyping(+1);
    try {
      const response = await fetch(`${gateway}/v1/chat`, {
        method: "POST", headers: {"Content-Type": "application/json"}, credentials: "omit",
        body: JSON.stringify({text, session_id: session})});
      if (!response.ok) { note(failure(response.status)); return; }
      const data = await response.json();
      data.replies.forEach((reply) => add(reply, "bot"));
      showChoices(data.buttons);
      showHandoff(data.handoff);
    } catch (error) {  // a site that is refused cannot even read the answer of a POST (CORS)
      note(refused ? TEXT.refused : TEXT.unreachable);
    } finally {
      setTyping(-1);
    }
  };

  let restored = false, refused = false;
  let restoring = null;  // a message typed while the history loads waits for it (order on screen)
  const restore = () => {
    if (!restored) { restored = true; restoring = load(); }
    return restoring;
  };
  const load = async () => {  // the conversation so far, from the gateway
    const asked = session;
    try {
      const config = await fetch(`${gateway}/v1/widget/config`, {credentials: "omit"});
      if (config.status === 403) { refused = true; note(TEXT.refused); return; }
      const response = await fetch(`${gateway}/v1/chat/history`, {  // the id in the body: never in a logged URL
        method: "POST", headers: {"Content-Type": "application/json"}, credentials: "omit",
        body: JSON.stringify({session_id: session})});
      const data = response.ok ? await response.json() : {messages: []};
      if (session !== asked) return;  // "新对话" meanwhile: this history is not the shown conversation
      if (!data.messages.length) { welcome(); return; }
      data.messages.forEach((m) => add(m.text, m.from === "user" ? "user" : "bot"));
      const last = data.messages[data.messages.length - 1];
      showChoices(last.buttons);
      showHandoff(data.handoff);
    } catch (error) {
      note(TEXT.unreachable);
    }
  };

  const newConversation = () => {
    stopMic();
    session = newSessionId();
    store.setItem(storageKey, session);
    log.replaceChildren();
    status.textContent = "";
    welcome();
    input.focus();
  };

  // --- opening and closing; the keyboard ------------------------------------------------------
  const open = () => {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    store.setItem(openKey, "1");  // a reload or the next page opens it again
    restore();
    input.focus();
  };
  const close = () => {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    store.setItem(openKey, "0");
    launcher.focus();
  };
  launcher.addEventListener("click", () => (panel.hidden ? open() : close()));
  $(".close").addEventListener("click", close);
  $(".new").addEventListener("click", newConversation);
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await restore();
    send(text, text);
  });

  // --- voice: a toggle; 16 kHz PCM16 up the stream WebSocket, WAV clauses back ----------------
  let socket = null, context = null, source = null, processor = null, stream = null, playing = [], playAt = 0;
  const stopPlayback = () => { playing.forEach((node) => { try { node.stop(); } catch (e) { /* ended */ } }); playing = []; playAt = 0; };
  const play = async (buffer) => {
    if (!context) return;
    const audio = await context.decodeAudioData(buffer);
    const node = context.createBufferSource();
    node.buffer = audio;
    node.connect(context.destination);
    playAt = Math.max(playAt, context.currentTime);
    node.start(playAt);
    playAt += audio.duration;
    playing.push(node);
  };
  function stopMic() {
    if (processor) processor.disconnect();
    if (source) source.disconnect();
    if (stream) stream.getTracks().forEach((track) => track.stop());
    if (socket) socket.close();
    socket = processor = source = stream = null;
    mic.setAttribute("aria-pressed", "false");
    mic.setAttribute("aria-label", TEXT.micOn);
  }
  const startMic = async () => {
    context = context || new AudioContext({sampleRate: 16000});
    const ws = socket = new WebSocket(`${gateway.replace(/^http/, "ws")}/v1/voice/stream?session=${encodeURIComponent(session)}`);
    ws.binaryType = "arraybuffer";
    mic.setAttribute("aria-pressed", "true");
    mic.setAttribute("aria-label", TEXT.micOff);
    ws.onerror = () => { if (socket === ws) { note(TEXT.unreachable); stopMic(); } };
    ws.onclose = () => { if (socket === ws) stopMic(); };  // the gateway ended the stream
    ws.onmessage = async (event) => {
      if (typeof event.data !== "string") { play(event.data); return; }
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        if (!message.speech) { note(TEXT.noSpeech); stopMic(); return; }
        if (!message.voice) note(TEXT.textOnly);
        let granted;
        try {
          granted = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: true}});
        } catch (error) { note(TEXT.micDenied + error.message); stopMic(); return; }
        if (socket !== ws) { granted.getTracks().forEach((track) => track.stop()); return; }  // turned off meanwhile
        stream = granted;
        source = context.createMediaStreamSource(stream);
        processor = context.createScriptProcessor(4096, 1, 1);
        processor.onaudioprocess = (e) => {
          if (!socket || socket.readyState !== 1) return;
          const samples = e.inputBuffer.getChannelData(0);
          const pcm = new Int16Array(samples.length);
          for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 32767;
          socket.send(pcm.buffer);
        };
        source.connect(processor);
        processor.connect(context.destination);
        note(TEXT.listening);
      } else if (message.type === "transcript" && message.text) { clearChoices(); add(message.text, "user"); }
      else if (message.type === "bot_text") { add(message.text, "bot"); showChoices(message.buttons); showHandoff(message.handoff); }
      else if (message.type === "clear") stopPlayback();
      else if (message.type === "error") note(message.message);
    };
  };
  mic.addEventListener("click", async () => {
    if (socket) { stopMic(); return; }
    try { await startMic(); } catch (error) { note(TEXT.micDenied + error.message); stopMic(); }
  });

  const mount = () => {
    document.body.appendChild(host);
    const wasOpen = store.getItem(openKey);
    if (wasOpen === "1" || (wasOpen === null && options.open === "true")) open();
  };
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
