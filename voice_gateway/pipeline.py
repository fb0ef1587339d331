"""One bot turn from audio or text: STT → Rasa → TTS, with timings. The CPU-bound engines run in
their own bounded pools: one recognition queue (voice_gateway/recognition.py) and one synthesis
queue that serves first clauses first (voice_gateway/tts/scheduler.py), so concurrent calls queue
instead of oversubscribing the cores, and the event loop never waits on an engine."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, List, Optional, Union

import numpy as np

from hotline.core.text import has_content
from voice_gateway import metrics
from voice_gateway.rasa_client import BotReply, RasaClient
from voice_gateway.choices import OfferedChoices
from voice_gateway.prompts import NOT_HEARD
from voice_gateway.recognition import RecognitionJob, RecognitionQueue
from voice_gateway.stt import SpeechToText, Transcript
from voice_gateway.tts.base import SpeechChunk, TextToSpeech
from voice_gateway.tts.reading import quick_start
from voice_gateway.tts.scheduler import SynthesisQueue


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
        self.synthesis = SynthesisQueue(tts_workers)
        self.offered = OfferedChoices(bot.offered_payloads)

    def recognise(self, samples: np.ndarray, ended_at: Optional[float] = None,
                  speculative: bool = False, prompt: Optional[str] = None) -> RecognitionJob:
        """Queue an utterance (or the speech so far, speculatively) for recognition."""
        if self.recognition is None:
            raise RuntimeError("speech recognition is not loaded")
        return self.recognition.submit(samples, ended_at, speculative, prompt)

    async def transcribe(self, samples: np.ndarray, ended_at: Optional[float] = None) -> Transcript:
        return await self.recognise(samples, ended_at).future

    def close(self) -> None:
        if self.recognition is not None:
            self.recognition.close()
        self.synthesis.close()

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
        """Clause by clause; nothing when no voice is loaded (text-only mode). Cached clauses are
        read at once; every live clause of the reply is queued for synthesis before the first is
        played, ranked by its position, so later clauses render while earlier ones play."""
        if self.tts is None:
            return
        started, first = time.perf_counter(), True
        pending: List[Union[bytes, Future]] = []
        said: List[str] = []
        for unit in (unit for text in texts for unit in self.tts.clauses(text)):
            for piece, pcm in self.tts.pieces(unit):
                if pcm is not None:
                    said.append(piece)
                    pending.append(pcm)
                    continue
                # The first audio of a reply, when it is not cached, starts with a short piece.
                for part in (quick_start(piece) if not said else [piece]):
                    pending.append(self.synthesis.submit(len(said), self.tts.synthesize, part))
                    said.append(part)
        try:
            for clause, item in zip(said, pending):
                cached = not isinstance(item, Future)
                pcm = item if cached else await asyncio.wrap_future(item)
                metrics.TTS_CACHE.labels("cache" if cached else "live").inc()
                if not pcm:
                    continue
                if first:
                    metrics.TTS_FIRST_SECONDS.observe(time.perf_counter() - started)
                    first = False
                yield SpeechChunk(pcm, self.tts.sample_rate, clause, cached=cached)
        finally:  # barge-in or hang-up: what was not yet synthesised never will be
            for item in pending:
                if isinstance(item, Future):
                    item.cancel()
