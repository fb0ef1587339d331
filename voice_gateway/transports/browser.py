"""Browser/client audio stream (WebSocket /v1/voice/stream).

In: binary frames of 16 kHz mono PCM16 little-endian; text frames {"type": "text", "text": …}.
Out (JSON text frames): ready, speech_start, transcript, bot_text (with buttons and the handoff),
audio (followed by one binary WAV frame per clause), clear (barge-in: stop playing), error."""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Optional

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from hotline.core.text import has_content
from voice_gateway import metrics
from voice_gateway.audio import STT_RATE, pcm16_to_float, wav_bytes
from voice_gateway.choices import EMPTY_PROMPT, MAX_TEXT_CHARS
from voice_gateway.pipeline import VoicePipeline
from voice_gateway.vad import Endpointer

MAX_FRAME_BYTES = 64_000  # 2 s of audio in one frame is already more than any client sends
MAX_RATE = 3.0  # × real time
MAX_PENDING_TEXTS = 3  # typed messages waiting for their turn; more is a flood, not a conversation
SESSION_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


class BrowserStream:
    def __init__(self, websocket: WebSocket, pipeline: VoicePipeline, session_id: str) -> None:
        self.websocket, self.pipeline, self.session_id = websocket, pipeline, session_id
        self.endpointer = Endpointer()
        self.speaking: Optional[asyncio.Task] = None
        self.lock = asyncio.Lock()
        self.window, self.window_bytes = time.monotonic(), 0
        self.pending_texts = 0
        self.tasks: set = set()  # turns in progress: cancelled when the client goes (as PhoneCall's)
        client = websocket.client
        self.metadata = {"client": client.host} if client else {}

    def spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def send(self, **event) -> None:
        await self.websocket.send_text(json.dumps(event, ensure_ascii=False))

    async def on_audio(self, data: bytes) -> None:
        if not data:
            return  # 0-length frames are keep-alives
        if len(data) > MAX_FRAME_BYTES or self.flooded(len(data)):
            metrics.ERRORS.labels("browser", "audio_flood").inc()
            await self.send(type="error", message="too much audio too fast; frames dropped")
            return
        for event in self.endpointer.feed(pcm16_to_float(data)):
            if event.kind == "speech_start":
                await self.send(type="speech_start")
                if self.speaking and not self.speaking.done():
                    self.speaking.cancel()
                    await self.send(type="clear")
            elif event.kind == "utterance":
                self.spawn(self.audio_turn(event.audio))

    async def audio_turn(self, audio: np.ndarray) -> None:
        async with self.lock:
            result = await self.pipeline.audio_turn(self.session_id, audio, "browser", metadata=self.metadata)
            await self.send(type="transcript", text=result.transcript.text if result.transcript else "",
                            intent=result.reply.intent, confidence=result.reply.confidence)
            await self.reply(result.reply.texts, result.reply.buttons, result.reply.handoff)

    async def text_turn(self, text: str) -> None:
        self.pending_texts += 1
        try:
            await self._text_turn(text)
        finally:
            self.pending_texts -= 1

    async def _text_turn(self, text: str) -> None:
        async with self.lock:
            text = await self.pipeline.offered.public_text(self.session_id, text)
            if not has_content(text):
                await self.reply([EMPTY_PROMPT])
                return
            reply = await self.pipeline.text_turn(self.session_id, text, "browser", self.metadata)
            await self.reply(reply.texts, reply.buttons, reply.handoff)

    async def reply(self, texts, buttons=(), handoff=None) -> None:
        for i, text in enumerate(texts):  # choices and the handoff ride on the last text
            last = i == len(texts) - 1
            await self.send(type="bot_text", text=text, buttons=list(buttons) if last else [],
                            handoff=handoff if last else None)
        self.speaking = asyncio.ensure_future(self.play(texts))
        try:
            await self.speaking
        except asyncio.CancelledError:
            pass

    async def play(self, texts) -> None:
        async for chunk in self.pipeline.speak(texts):
            await self.send(type="audio", sample_rate=chunk.sample_rate, text=chunk.text)
            await self.websocket.send_bytes(wav_bytes(chunk.pcm16, chunk.sample_rate))

    def flooded(self, size: int) -> bool:
        now = time.monotonic()
        if now - self.window >= 1.0:
            self.window, self.window_bytes = now, 0
        self.window_bytes += size
        return self.window_bytes > MAX_RATE * STT_RATE * 2


async def serve_stream(websocket: WebSocket, pipeline: VoicePipeline) -> None:
    await websocket.accept()
    session_id = websocket.query_params.get("session") or ""
    if not SESSION_ID.fullmatch(session_id):  # missing or not an id: a fresh conversation
        session_id = f"web-{uuid.uuid4().hex[:12]}"
    stream = BrowserStream(websocket, pipeline, session_id)
    metrics.ACTIVE_CALLS.labels("browser").inc()
    await stream.send(type="ready", session=session_id, speech=pipeline.stt is not None,
                      voice=pipeline.tts is not None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                await stream.on_audio(message["bytes"])
            elif message.get("text"):
                try:
                    data = json.loads(message["text"])
                    text = str(data.get("text", "")).strip() if data.get("type") == "text" else ""
                except (ValueError, AttributeError):
                    text = ""
                if text and stream.pending_texts >= MAX_PENDING_TEXTS:
                    metrics.ERRORS.labels("browser", "text_flood").inc()
                    await stream.send(type="error", message="too many messages at once; please wait for the reply")
                elif text:
                    stream.spawn(stream.text_turn(text[:MAX_TEXT_CHARS]))
                else:
                    await stream.send(type="error", message="expected {\"type\": \"text\", \"text\": …}")
    except WebSocketDisconnect:
        pass
    finally:
        metrics.ACTIVE_CALLS.labels("browser").dec()
        for task in list(stream.tasks):
            task.cancel()
        if stream.speaking:
            stream.speaking.cancel()
