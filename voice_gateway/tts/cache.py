"""Fixed replies are already audio: a clause cache in front of the TTS engine.

Almost every reply is a fixed response of the domain. Each of their clauses is rendered once per
voice (in the background at start-up) into `models/tts-cache/<voice>/<sha256 of the clause>.pcm`,
so the first audio of a fixed reply is a file read. Clauses with dynamic parts (numbers, dates,
statuses, names) are synthesised live and never written to disk: they may hold identifiers."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

import yaml

from voice_gateway.tts.base import TextToSpeech, clauses
from voice_gateway.tts.reading import holds_number

logger = logging.getLogger(__name__)
SLOT = re.compile(r"\{[^{}]*\}")


def fixed_texts(domain_path: Path) -> List[str]:
    """What callers hear of the domain's responses: each one's phone variant, or its only text.
    (The long chat versions are synthesised live when a browser asks for speech.)"""
    responses = (yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}).get("responses") or {}
    texts = []
    for values in responses.values():
        variants = [v for v in values if isinstance(v, dict) and v.get("text")]
        phone = [v for v in variants if v.get("channel") == "phone"]
        texts += [v["text"] for v in (phone or variants)]
    return texts


def fixed_clauses(texts: Iterable[str], split) -> List[str]:
    """The engine's units (`split`: text → prepared clauses or sentences) that hold no slot: what
    a filled-in reply shares with its template."""
    seen: Dict[str, None] = {}
    for text in texts:
        for unit in split(SLOT.sub("\x00", text)):
            if "\x00" not in unit:
                seen.setdefault(unit)
                continue
            # "我确认一下，您是想咨询{topic}吗？": the clauses before the slot are fixed audio that
            # the filled-in sentence starts with (see `CachedTTS.pieces`).
            for clause in clauses(unit):
                if "\x00" in clause:
                    break
                seen.setdefault(clause)
    return list(seen)


class CachedTTS(TextToSpeech):
    """A `TextToSpeech` that answers fixed clauses from memory or disk, the rest live."""

    def __init__(self, engine: TextToSpeech, cache_dir: Path, recent: int = 256) -> None:
        self.engine, self.directory = engine, cache_dir / engine.cache_key
        for attribute in ("kind", "name", "language", "sample_rate", "mandarin", "licence", "cache_key"):
            setattr(self, attribute, getattr(engine, attribute))
        self._memory: Dict[str, bytes] = {}
        self._recent: "OrderedDict[str, bytes]" = OrderedDict()  # live clauses without digits
        self._recent_size = recent
        self._fixed: Set[str] = set()
        self._lock = threading.Lock()

    def prepare(self, text: str) -> str:
        return self.engine.prepare(text)

    def clauses(self, text: str) -> List[str]:
        return self.engine.clauses(text)

    def _path(self, clause: str) -> Path:
        return self.directory / f"{hashlib.sha256(clause.encode('utf-8')).hexdigest()[:32]}.pcm"

    def lookup(self, clause: str) -> Optional[bytes]:
        pcm = self._memory.get(clause)
        if pcm is None and clause in self._fixed:
            path = self._path(clause)
            if path.exists() and path.stat().st_size > 0:  # an empty file is a failed write: a miss
                pcm = self._memory[clause] = path.read_bytes()
        if pcm is None:
            with self._lock:
                pcm = self._recent.get(clause)
                if pcm is not None:
                    self._recent.move_to_end(clause)
        return pcm

    def pieces(self, unit: str) -> List[Tuple[str, Optional[bytes]]]:
        """A unit as cached audio where there is some: whole, or its cached opening clauses and
        the rest of it to synthesise (a filled-in template starts with its fixed words)."""
        pcm = self.lookup(unit)
        if pcm is not None:
            return [(unit, pcm)]
        parts = clauses(unit)
        opening: List[Tuple[str, Optional[bytes]]] = []
        for clause in parts[:-1]:
            pcm = self.lookup(clause)
            if pcm is None:
                break
            opening.append((clause, pcm))
        rest = "".join(parts[len(opening):])
        return opening + [(rest, None)]

    def _remember(self, clause: str, pcm: bytes) -> None:
        if holds_number(clause) or clause in self._fixed:
            return  # numbers (also spelled 幺二三) may be identifiers: never kept

        with self._lock:
            self._recent[clause] = pcm
            while len(self._recent) > self._recent_size:
                self._recent.popitem(last=False)

    def render(self, clause: str) -> bytes:
        return self.engine.synthesize(clause)

    def synthesize(self, clause: str) -> bytes:
        """A clause the cache did not have: rendered live, kept in memory if it holds no number."""
        pcm = self.render(clause)
        self._remember(clause, pcm)
        return pcm

    def describe(self) -> dict:
        return {**self.engine.describe(), "cache": str(self.directory)}

    def warm(self, texts: Iterable[str]) -> int:
        """Render the fixed clauses not yet on disk; returns how many were rendered."""
        wanted = fixed_clauses(texts, self.engine.clauses)
        with self._lock:
            self._fixed.update(wanted)
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*.partial"):  # left by a process killed mid-write
            if time.time() - stale.stat().st_mtime > 600:
                stale.unlink(missing_ok=True)
        rendered = 0
        for clause in wanted:  # kept in memory too (14 MB for the domain): a call never waits on the disk
            path = self._path(clause)
            if path.exists() and path.stat().st_size > 0:
                self._memory[clause] = path.read_bytes()
                continue
            pcm = self.render(clause)
            if pcm:
                self._store(path, pcm)
                self._memory[clause] = pcm
                rendered += 1
        return rendered

    def _store(self, path: Path, pcm: bytes) -> None:
        """Atomic and durable: a reader (another gateway on the same folder) sees all or nothing."""
        handle, partial = tempfile.mkstemp(dir=self.directory, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(pcm)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
