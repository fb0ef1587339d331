"""Every channel speaks Mandarin with the default voice (Kokoro, as `make run` loads it): a gateway
started as a process on the shared stack's Rasa, called over Twilio Media Streams, Asterisk
AudioSocket, the HTTP voice turn and the browser stream. What comes back on each wire is decoded
here and heard by the project's recogniser; the tests check content words of the reply."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
import wave

import numpy as np
import pytest
import requests
import websockets

from hotline.core.settings import Settings
from tests.test_carriers import gateway
from tests.test_gateway import AISHELL, TwilioCaller, clip_16k, clip_8k_pcm, frame, read_frames
from tests.test_phone_audio import pcm16le_to_float, ulaw_to_float
from voice_gateway.audio import STT_RATE, float_to_pcm16, resample
from voice_gateway.stt import WhisperSTT, ensure_whisper_model


@pytest.fixture(scope="module")
def line(stack, tmp_path_factory):
    """The gateway with nothing said about the voice: the embedded default."""
    with gateway(stack, tmp_path_factory.mktemp("mandarin"), load_speech="true") as (url, audiosocket_port):
        yield url, audiosocket_port


@pytest.fixture(scope="module")
def ear():
    settings = Settings()
    return WhisperSTT(ensure_whisper_model(settings.whisper_dir), beam_size=settings.stt_beam_size,
                      temperature_fallback=settings.stt_temperature_fallback, window_s=settings.stt_window_s)


def hear(ear, samples: np.ndarray, rate: int) -> str:
    return ear.transcribe(resample(samples.astype(np.float32), rate, STT_RATE)).text


def some_of(words, heard: str, at_least: int = 2):
    found = [w for w in words if w in heard]
    assert len(found) >= at_least, f"heard {heard!r}, expected some of {words}"


GREETING_WORDS = ["您好", "苹果", "产品", "支持", "智能", "助手"]


def test_readiness_names_the_mandarin_voice(line):
    url, _ = line
    tts = requests.get(f"{url}/readyz", timeout=10).json()["tts"]
    assert tts["engine"] == "kokoro" and tts["voice"] == "jm_kumo" and tts["mandarin"] is True
    assert "Apache-2.0" in tts["licence"] and tts["cache"]


def test_a_twilio_caller_hears_the_greeting_and_the_answer_in_mandarin(line, ear):
    url, _ = line

    async def call():
        async with websockets.connect(url.replace("http", "ws") + "/twilio/media-stream", max_size=None) as ws:
            caller = TwilioCaller(ws, "CA" + uuid.uuid4().hex)
            await caller.start()
            await caller.wait_for(lambda m: m["event"] == "media")
            await caller.drain(4.0)  # the whole greeting
            greeting = b"".join(base64.b64decode(m["media"]["payload"]) for m in caller.received
                                if m["event"] == "media")
            for mark in [m for m in caller.received if m["event"] == "mark"]:  # played: echo marks
                await caller.send({"event": "mark", "streamSid": caller.stream_sid, "mark": mark["mark"]})
            caller.received.clear()
            await caller.speak(clip_8k_pcm(AISHELL))  # a real recorded sentence
            await caller.wait_for(lambda m: m["event"] == "media", timeout=90)
            await caller.drain(6.0)
            answer = b"".join(base64.b64decode(m["media"]["payload"]) for m in caller.received
                              if m["event"] == "media")
            return greeting, answer

    greeting, answer = asyncio.run(call())
    some_of(GREETING_WORDS, hear(ear, ulaw_to_float(greeting), 8000), at_least=3)
    assert len(answer) > 8000 * 1.0  # a spoken answer, at least a second of it
    heard = hear(ear, ulaw_to_float(answer), 8000)
    assert sum(1 for ch in heard if "\u4e00" <= ch <= "\u9fff") >= 6, heard  # Mandarin words, not silence


def test_an_asterisk_caller_hears_the_greeting_in_mandarin(line, ear):
    _, port = line

    async def call():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(0x01, uuid.uuid4().bytes))
        frames = await read_frames(reader, 6)
        writer.write(frame(0x00))
        await writer.drain()
        writer.close()
        return b"".join(p for k, p in frames if k == 0x10)

    some_of(GREETING_WORDS, hear(ear, pcm16le_to_float(asyncio.run(call())), 8000), at_least=3)


def wav_samples(data: bytes):
    with wave.open(io.BytesIO(data)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32) / 32768, wav.getframerate()


def test_a_spoken_turn_over_http_is_answered_with_the_reply_in_mandarin_audio(line, ear):
    url, _ = line
    question = float_to_pcm16(clip_16k(AISHELL))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000), out.writeframes(question)
    result = requests.post(f"{url}/v1/voice/turn", files={"audio": ("q.wav", buffer.getvalue())}, timeout=120).json()
    samples, rate = wav_samples(base64.b64decode(result["audio_wav_base64"]))
    assert rate == 24000 and len(samples) > rate
    reply = "".join(result["replies"])
    heard = hear(ear, samples, rate)
    words = [reply[i:i + 2] for i in range(0, len(reply) - 1, 2) if all("\u4e00" <= c <= "\u9fff" for c in reply[i:i + 2])]
    found = [w for w in words if w in heard]
    assert len(found) >= max(2, len(words) // 4), (reply, heard)


def test_the_widget_plays_the_reply_when_the_user_spoke(line, ear):
    url, _ = line

    async def session():
        async with websockets.connect(url.replace("http", "ws") + "/v1/voice/stream?session=zh-voice-1",
                                      max_size=None) as ws:
            assert json.loads(await ws.recv())["voice"]
            pcm = float_to_pcm16(clip_16k(AISHELL)) + b"\x00\x00" * 16000
            for start in range(0, len(pcm), 3200):
                await ws.send(pcm[start:start + 3200])
                await asyncio.sleep(0.05)
            texts, audio, deadline = [], [], time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    message = await asyncio.wait_for(ws.recv(), 5 if audio else 90)
                except asyncio.TimeoutError:
                    break
                if isinstance(message, bytes):
                    audio.append(message)
                elif json.loads(message)["type"] == "bot_text":
                    texts.append(json.loads(message)["text"])
            return texts, audio

    texts, audio = asyncio.run(session())
    assert texts and audio and all(a[:4] == b"RIFF" for a in audio)
    samples = np.concatenate([wav_samples(a)[0] for a in audio])
    assert sum(1 for ch in hear(ear, samples, 24000) if "\u4e00" <= ch <= "\u9fff") >= 6


def test_a_gateway_without_a_voice_says_why(stack, tmp_path):
    with gateway(stack, tmp_path, load_speech="true", tts_engine="espeak") as (url, _):
        tts = requests.get(f"{url}/readyz", timeout=10).json()["tts"]
        log = (tmp_path / "gateway.log").read_text()
    assert tts["voice"] is None and "kokoro, piper" in tts["warning"] and "text only" in tts["warning"]
    assert "no voice" in log
