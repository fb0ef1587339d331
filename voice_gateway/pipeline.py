"""One bot turn from audio or text: STT → Rasa → TTS, with timings. The CPU-bound engines run in
their own bounded pools: one recognition queue (voice_gateway/recognition.py) and a small TTS
pool, so concurrent calls queue instead of oversubscribing the cores."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, List, Optional

import numpy as np

from hotline.core.text import has_content
from voice_gateway import metrics
from voice_gateway.rasa_client import BotReply, RasaClient
from voice_gateway.choices import OfferedChoices
from voice_gateway.prompts import NOT_HEARD
from voice_gateway.recognition import RecognitionJob, RecognitionQueue
from voice_gateway.stt import SpeechToText, Transcript
from voice_gateway.tts import SpeechChunk, TextToSpeech



@dataclass
class TurnResult:
    transcript: Optional[Transcript]
    reply: BotReply
    timings: Dict[str, float] = field(default_factory=dict)


class VoicePipeline:
    def __init__(self, bot: RasaClient, stt: Optional[SpeechToText], tts: Optional[TextToSpeech],
                 stt_workers: int = 1, tts_workers: int = 1) -> None:
        self.bot, self.stt, self.tts = bot, stt, tts
        self.recognition = RecognitionQueue(stt, stt_workers) if stt is not None else None
        self.tts_pool = ThreadPoolExecutor(max(1, tts_workers), thread_name_prefix="tts")
        self.offered = OfferedChoices(bot.offered_payloads)

    def recognise(self, samples: np.ndarray, ended_at: Optional[float] = None,
                  speculative: bool = False) -> RecognitionJob:
        """Queue an utterance (or the speech so far, speculatively) for recognition."""
        if self.recognition is None:
            raise RuntimeError("speech recognition is not loaded")
        return self.recognition.submit(samples, ended_at, speculative)

    async def transcribe(self, samples: np.ndarray, ended_at: Optional[float] = None) -> Transcript:
        return await self.recognise(samples, ended_at).future

    def close(self) -> None:
        if self.recognition is not None:
            self.recognition.close()
        self.tts_pool.shutdown(wait=False, cancel_futures=True)

    async def text_turn(self, sender: str, text: str, transport: str = "chat", channel: str = "rest",
                        metadata: Optional[Dict[str, str]] = None) -> BotReply:
        started = time.perf_counter()
        reply = await self.bot.turn(sender, text, channel, metadata)
        metrics.RASA_TURN_SECONDS.observe(time.perf_counter() - started)
        metrics.TURNS.labels(transport, "text").inc()
        return reply

    async def audio_turn(self, sender: str, samples: np.ndarray, transport: str, channel: str = "rest",
                         job: Optional[RecognitionJob] = None,
                         metadata: Optional[Dict[str, str]] = None) -> TurnResult:
        """`job`: a recognition already queued for this audio (speculatively, at a pause)."""
        waited = time.perf_counter()
        transcript = await (job.future if job is not None else self.transcribe(samples))
        # Time spent waiting here after the endpoint: the recogniser's share of the turn.
        timings = {"stt": time.perf_counter() - waited, "queue": transcript.queued,
                   "stt_engine": transcript.seconds}
        if not has_content(transcript.text):  # nothing, or only punctuation: ask again
            metrics.TURNS.labels(transport, "not_heard").inc()
            return TurnResult(transcript, BotReply([NOT_HEARD]), timings)
        started = time.perf_counter()
        # A transcript is words: a leading "/" would make Rasa read it as an intent.
        reply = await self.bot.turn(sender, transcript.text.lstrip("/"), channel, metadata)
        timings["rasa"] = time.perf_counter() - started
        metrics.RASA_TURN_SECONDS.observe(timings["rasa"])
        metrics.TURNS.labels(transport, "audio").inc()
        return TurnResult(transcript, reply, timings)

    async def speak(self, texts: List[str]) -> AsyncIterator[SpeechChunk]:
        """Clause by clause; nothing when no voice is loaded (text-only mode)."""
        if self.tts is None:
            return
        started, first = time.perf_counter(), True
        loop = asyncio.get_running_loop()
        for text in texts:
            iterator = iter(self.tts.stream(text))
            while True:
                chunk = await loop.run_in_executor(self.tts_pool, next, iterator, None)
                if chunk is None:
                    break
                if first:
                    metrics.TTS_FIRST_SECONDS.observe(time.perf_counter() - started)
                    first = False
                yield chunk
