"""One speech-recognition queue per gateway, so recognisers never oversubscribe the CPU.

Whisper is CPU-bound: two decodes of two threads each on two cores take longer together than one
after the other. All calls share `workers` threads (each decode uses the engine's own threads);
utterances are served in the order they ended, before any speculative job (recognition started at a
pause, before the endpoint), and a job whose audio was superseded (the caller went on speaking) is
dropped before it starts."""
from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from voice_gateway import metrics
from voice_gateway.stt import SpeechToText, Transcript


@dataclass(order=True)
class RecognitionJob:
    speculative: bool  # finished utterances go first: a speculation only uses idle time
    ended_at: float  # when the utterance (or the pause that started a speculative job) ended
    sequence: int
    samples: np.ndarray = field(compare=False)
    future: asyncio.Future = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    queued_at: float = field(compare=False, default_factory=time.perf_counter)
    cancelled: bool = field(compare=False, default=False)
    started: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        """Not needed any more: skipped if not started, result ignored if running."""
        self.cancelled = True
        if not self.future.done():
            self.future.cancel()


class RecognitionQueue:
    def __init__(self, stt: SpeechToText, workers: int = 1) -> None:
        self.stt = stt
        self._jobs: "queue.PriorityQueue[RecognitionJob]" = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._threads = [threading.Thread(target=self._work, name=f"stt-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, samples: np.ndarray, ended_at: Optional[float] = None,
               speculative: bool = False) -> RecognitionJob:
        loop = asyncio.get_running_loop()
        job = RecognitionJob(speculative, ended_at if ended_at is not None else time.perf_counter(),
                             next(self._sequence), samples, loop.create_future(), loop)
        self._jobs.put(job)
        metrics.STT_QUEUE_DEPTH.inc()
        return job

    async def transcribe(self, samples: np.ndarray, ended_at: Optional[float] = None) -> Transcript:
        return await self.submit(samples, ended_at).future

    def close(self) -> None:
        for _ in self._threads:  # after every job already queued
            self._jobs.put(RecognitionJob(True, float("inf"), next(self._sequence), None, None, None))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job.samples is None:
                return
            metrics.STT_QUEUE_DEPTH.dec()
            if job.cancelled:
                metrics.STT_DROPPED.inc()
                continue
            job.started = True
            waited = time.perf_counter() - job.queued_at
            metrics.STT_QUEUE_SECONDS.observe(waited)
            try:
                transcript = self.stt.transcribe(job.samples)
                transcript.queued = waited
                metrics.STT_SECONDS.observe(transcript.seconds)
                job.loop.call_soon_threadsafe(_resolve, job.future, transcript, None)
            except Exception as error:  # delivered to the awaiting turn, which apologises
                job.loop.call_soon_threadsafe(_resolve, job.future, None, error)


def _resolve(future: asyncio.Future, result: Optional[Transcript], error: Optional[BaseException]) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
