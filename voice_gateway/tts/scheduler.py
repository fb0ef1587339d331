"""Synthesis for every call on a few worker threads, first clauses first.

Each reply queues all its live clauses at once (so the next clause renders while the previous one
plays), ranked by position in its reply: a caller still waiting for a first clause goes ahead of
another caller's third. Ties go in arrival order; a reply cut off by barge-in cancels what it
queued."""
from __future__ import annotations

import heapq
import itertools
import threading
from concurrent.futures import Future
from typing import Callable, List, Optional, Tuple


class SynthesisQueue:
    def __init__(self, workers: int = 1, name: str = "tts") -> None:
        self._heap: List[Tuple[int, int, Future, Callable, tuple]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, rank: int, function: Callable, *args) -> Future:
        future: Future = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("synthesis queue is closed")
            heapq.heappush(self._heap, (rank, next(self._order), future, function, args))
            self._ready.notify()
        return future

    def pending(self) -> int:
        with self._ready:
            return len(self._heap)

    def _next(self) -> Optional[Tuple[Future, Callable, tuple]]:
        with self._ready:
            while not self._heap and not self._closed:
                self._ready.wait()
            if not self._heap:
                return None
            _, _, future, function, args = heapq.heappop(self._heap)
            return future, function, args

    def _work(self) -> None:
        while (item := self._next()) is not None:
            future, function, args = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued (barge-in, hang-up)
            try:
                future.set_result(function(*args))
            except BaseException as error:  # handed to the awaiting reply, which logs it
                future.set_exception(error)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            for _, _, future, _, _ in self._heap:
                future.cancel()
            self._heap.clear()
            self._ready.notify_all()
