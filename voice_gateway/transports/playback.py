"""One bot reply on its way to a caller, clause by clause: what was sent, what the caller has
heard (the wire's marks, or the pacer, say so), and a hold that stops the audio at once but
keeps the rest, so the reply can go on from the clause the caller talked over, or stop."""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import List, Protocol

_numbers = itertools.count(1)


class Output(Protocol):
    async def send_audio(self, pcm16_8k: bytes, label: str) -> None: ...
    async def clear(self) -> None: ...


@dataclass
class Clause:
    text: str
    pcm16_8k: bytes


class Playback:
    def __init__(self, output: Output) -> None:
        self.output = output
        self.prefix = f"reply-{next(_numbers)}:"
        self.clauses: List[Clause] = []
        self.sent = 0  # clauses handed to the output (since the last hold)
        self.heard: set = set()  # indices the caller has heard to the end
        self.held = False
        self.stopped = False
        self._released = asyncio.Event()
        self._released.set()
        self._lock = asyncio.Lock()

    # --- what the reply says --------------------------------------------------------------
    async def add(self, text: str, pcm16_8k: bytes) -> None:
        """The next clause, as synthesised: sent at once unless the reply is held or stopped."""
        self.clauses.append(Clause(text, pcm16_8k))
        await self._send_pending()

    async def finish(self) -> bool:
        """Every clause has been added: wait while held. False if the reply was stopped."""
        await self._released.wait()
        await self._send_pending()
        return not self.stopped

    def played(self, label: str) -> bool:
        """A label the output reported as heard; False if it is not this reply's."""
        if not label.startswith(self.prefix):
            return False
        self.heard.add(int(label[len(self.prefix):]))
        return True

    # --- the caller talks over it ---------------------------------------------------------
    @property
    def first_unheard(self) -> int:
        return next((i for i in range(len(self.clauses)) if i not in self.heard), len(self.clauses))

    async def hold(self) -> int:
        """Stop the audio now (the wire drops what it buffered); the reply will go on from the
        first clause the caller has not heard to the end. Returns that clause's index."""
        if self.stopped or self.held:
            return self.first_unheard
        self.held = True
        self._released.clear()
        await self.output.clear()
        self.sent = self.first_unheard
        return self.sent

    async def resume(self) -> None:
        """Go on from the interrupted clause (it is said again from its start)."""
        if not self.held or self.stopped:
            return
        self.held = False
        self._released.set()
        await self._send_pending()

    def stop(self) -> None:
        """The caller took the turn: nothing more of this reply is sent."""
        self.stopped, self.held = True, False
        self._released.set()

    def heard_texts(self) -> List[str]:
        return [c.text for i, c in enumerate(self.clauses) if i in self.heard and c.text]

    def unheard_texts(self) -> List[str]:
        return [c.text for i, c in enumerate(self.clauses) if i not in self.heard and c.text]

    async def _send_pending(self) -> None:
        async with self._lock:  # one sender: a resume and a new clause never interleave
            while not self.held and not self.stopped and self.sent < len(self.clauses):
                index = self.sent
                self.sent += 1
                await self.output.send_audio(self.clauses[index].pcm16_8k, label=f"{self.prefix}{index}")
