"""The one interface every voice engine implements, and what they share: clause splitting and
the chunk a transport plays."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

CLAUSE = re.compile(r"(?<=[，、；。？！,;?!：:])")


@dataclass(frozen=True)
class SpeechChunk:
    pcm16: bytes
    sample_rate: int
    text: str
    cached: bool = False  # from the fixed-reply cache (voice_gateway/tts/cache.py)


def clauses(text: str) -> List[str]:
    return [c.strip() for c in CLAUSE.split(text) if c.strip()]


class TextToSpeech:
    """An engine: `prepare` turns a reply into what the voice should read (one clause per
    punctuation mark), `synthesize` renders one prepared clause to 16-bit mono PCM. Subclasses
    set the attributes; `lookup` is where a cache answers without synthesising."""

    name: str = "voice"
    kind: str = ""  # the engine: kokoro, piper
    language: str = ""
    sample_rate: int = 16000
    mandarin: bool = False
    licence: str = ""
    cache_key: str = ""  # a folder name: changes whenever the same text would sound different

    def prepare(self, text: str) -> str:
        return text

    def synthesize(self, clause: str) -> bytes:
        raise NotImplementedError

    def lookup(self, clause: str) -> Optional[bytes]:
        return None

    def clauses(self, text: str) -> List[str]:
        return clauses(self.prepare(text))

    def pieces(self, unit: str) -> List[Tuple[str, Optional[bytes]]]:
        """(text, audio) of one unit of `clauses`: audio where a cache has it, None to synthesise."""
        return [(unit, self.lookup(unit))]

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """One chunk per clause, in order (synchronous: commands and tests; the gateway uses
        `VoicePipeline.speak`, which synthesises ahead and shares the cores between calls)."""
        for unit in self.clauses(text):
            for piece, pcm in self.pieces(unit):
                cached = pcm is not None
                if pcm is None:
                    pcm = self.synthesize(piece)
                if pcm:
                    yield SpeechChunk(pcm, self.sample_rate, piece, cached=cached)

    def describe(self) -> dict:
        return {"engine": self.kind, "voice": self.name, "language": self.language,
                "sample_rate": self.sample_rate, "mandarin": self.mandarin, "licence": self.licence}
