"""One speech-recognition queue per gateway, so recognisers never oversubscribe the CPU.

Whisper is CPU-bound: two decodes of two threads each on two cores take longer together than one
after the other. All calls share `workers` threads (each decode uses the engine's own threads);
utterances are served in the order they ended, before any speculative job (recognition started at a
pause, before the endpoint), and a job nobody waits for any more (the caller went on speaking, or
hung up) is dropped before it starts. A decode that has started runs to the end."""
from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from voice_gateway import metrics
from voice_gateway.stt import SpeechToText, Transcript

logger = logging.getLogger(__name__)


@dataclass(order=True)
class RecognitionJob:
    is_job: bool  # False for the stop marker, which sorts before every job
    speculative: bool  # finished utterances go first: a speculation only uses idle time
    ended_at: float  # when the utterance (or the pause that started a speculative job) ended
    sequence: int
    samples: Optional[np.ndarray] = field(compare=False, default=None)
    future: Optional[asyncio.Future] = field(compare=False, default=None)
    loop: Optional[asyncio.AbstractEventLoop] = field(compare=False, default=None)
    queued_at: float = field(compare=False, default_factory=time.perf_counter)
    cancelled: bool = field(compare=False, default=False)
    started: bool = field(compare=False, default=False)
    prompt: Optional[str] = field(compare=False, default=None)  # words the decoder is told to expect
    _claim: threading.Lock = field(compare=False, default_factory=threading.Lock, repr=False)

    def claim(self) -> bool:
        """The worker takes the job, unless it was withdrawn first."""
        with self._claim:
            if self.cancelled:
                return False
            self.started = True
            return True

    def withdraw(self) -> bool:
        """Take the job back if no worker has started it; True if withdrawn."""
        with self._claim:
            if self.started:
                return False
            self.cancelled = True
        if self.future is not None and not self.future.done():
            self.future.cancel()
        return True

    def cancel(self) -> None:
        """Not needed any more: skipped if not started, result ignored if running."""
        self.withdraw()


class RecognitionQueue:
    def __init__(self, stt: SpeechToText, workers: int = 1) -> None:
        self.stt = stt
        self._jobs: "queue.PriorityQueue[RecognitionJob]" = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._threads = [threading.Thread(target=self._work, name=f"stt-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, samples: np.ndarray, ended_at: Optional[float] = None,
               speculative: bool = False, prompt: Optional[str] = None) -> RecognitionJob:
        loop = asyncio.get_running_loop()
        job = RecognitionJob(True, speculative, ended_at if ended_at is not None else time.perf_counter(),
                             next(self._sequence), samples, loop.create_future(), loop, prompt=prompt)
        # A turn that stops waiting (hang-up, barge-in) cancels the future: the job goes too.
        job.future.add_done_callback(lambda future: future.cancelled() and job.withdraw())
        self._jobs.put(job)
        metrics.STT_QUEUE_DEPTH.inc()
        return job

    async def transcribe(self, samples: np.ndarray, ended_at: Optional[float] = None) -> Transcript:
        return await self.submit(samples, ended_at).future

    def close(self) -> None:
        """Stop the workers before any waiting job (nobody is left to hear the answers)."""
        for _ in self._threads:
            self._jobs.put(RecognitionJob(False, False, float("-inf"), next(self._sequence)))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if not job.is_job:
                return
            metrics.STT_QUEUE_DEPTH.dec()
            if not job.claim():
                metrics.STT_DROPPED.inc()
                continue
            waited = time.perf_counter() - job.queued_at
            metrics.STT_QUEUE_SECONDS.observe(waited)
            try:
                transcript = (self.stt.transcribe(job.samples) if job.prompt is None
                              else self.stt.transcribe(job.samples, prompt=job.prompt))
                transcript.queued = waited
                metrics.STT_SECONDS.observe(transcript.seconds)
                result, error = transcript, None
            except Exception as failure:  # delivered to the awaiting turn, which apologises
                result, error = None, failure
            try:
                job.loop.call_soon_threadsafe(_resolve, job.future, result, error)
            except RuntimeError:  # the event loop has closed (shutting down)
                logger.debug("recognition result after the event loop closed: dropped")


def _resolve(future: asyncio.Future, result: Optional[Transcript], error: Optional[BaseException]) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
