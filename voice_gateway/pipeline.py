"""One bot turn from audio or text: STT → Rasa → TTS, with timings. CPU-bound engines run in
worker threads; a semaphore keeps concurrent Whisper calls to the number of cores."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, List, Optional

import numpy as np

from hotline.nlu.text import has_content
from voice_gateway import metrics
from voice_gateway.bot import BotReply, RasaClient
from voice_gateway.stt import SpeechToText, Transcript
from voice_gateway.tts import SpeechChunk, TextToSpeech

NOT_HEARD = "抱歉，我没有听清楚，请您再说一遍。"


@dataclass
class TurnResult:
    transcript: Optional[Transcript]
    reply: BotReply
    timings: Dict[str, float] = field(default_factory=dict)


class VoicePipeline:
    def __init__(self, bot: RasaClient, stt: Optional[SpeechToText], tts: Optional[TextToSpeech],
                 stt_concurrency: int = 2) -> None:
        self.bot, self.stt, self.tts = bot, stt, tts
        self._stt_slots = asyncio.Semaphore(stt_concurrency)
        self._tts_slots = asyncio.Semaphore(stt_concurrency)

    async def transcribe(self, samples: np.ndarray) -> Transcript:
        if self.stt is None:
            raise RuntimeError("speech recognition is not loaded")
        async with self._stt_slots:
            transcript = await asyncio.to_thread(self.stt.transcribe, samples)
        metrics.STT_SECONDS.observe(transcript.seconds)
        return transcript

    async def text_turn(self, sender: str, text: str, transport: str = "chat", channel: str = "rest") -> BotReply:
        started = time.perf_counter()
        reply = await self.bot.turn(sender, text, channel)
        metrics.NLU_SECONDS.observe(time.perf_counter() - started)
        metrics.TURNS.labels(transport, "text").inc()
        return reply

    async def audio_turn(self, sender: str, samples: np.ndarray, transport: str, channel: str = "rest") -> TurnResult:
        transcript = await self.transcribe(samples)
        timings = {"stt": transcript.seconds}
        if not has_content(transcript.text):  # nothing, or only punctuation: ask again
            metrics.TURNS.labels(transport, "not_heard").inc()
            return TurnResult(transcript, BotReply([NOT_HEARD]), timings)
        started = time.perf_counter()
        reply = await self.bot.turn(sender, transcript.text, channel)
        timings["rasa"] = time.perf_counter() - started
        metrics.NLU_SECONDS.observe(timings["rasa"])
        metrics.TURNS.labels(transport, "audio").inc()
        return TurnResult(transcript, reply, timings)

    async def speak(self, texts: List[str]) -> AsyncIterator[SpeechChunk]:
        """Clause by clause; nothing when no voice is loaded (text-only mode)."""
        if self.tts is None:
            return
        started, first = time.perf_counter(), True
        for text in texts:
            iterator = iter(self.tts.stream(text))
            while True:
                async with self._tts_slots:
                    chunk = await asyncio.to_thread(next, iterator, None)
                if chunk is None:
                    break
                if first:
                    metrics.TTS_FIRST_SECONDS.observe(time.perf_counter() - started)
                    first = False
                yield chunk
