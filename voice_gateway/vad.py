"""Endpointing on streams with Silero VAD (the ONNX model that ships inside faster-whisper)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional

import numpy as np

FRAME = 512  # samples at 16 kHz = 32 ms, Silero's window
CONTEXT = 64


@lru_cache(maxsize=1)
def silero():
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


def speech_probabilities(frames: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Probabilities for consecutive 512-sample frames, each seen with 64 samples of context."""
    model = silero()
    batch = frames.reshape(-1, FRAME)
    contexts = np.concatenate([context[None, :], batch[:-1, -CONTEXT:]], axis=0)
    inputs = np.concatenate([contexts, batch], axis=1).astype(np.float32)
    h = np.zeros((1, 1, 128), dtype="float32")
    c = np.zeros((1, 1, 128), dtype="float32")
    out, _h, _c = model.session.run(None, {"input": inputs, "h": h, "c": c})
    return np.asarray(out).reshape(-1)


@dataclass
class VadEvent:
    kind: str  # "speech_start" | "pause" | "blip" | "resume" | "utterance" | "discarded"
    audio: Optional[np.ndarray] = None
    voiced_s: float = 0.0  # voiced time in `audio` (pause, utterance)


class Endpointer:
    """Feeds 16 kHz float audio; reports when speech starts (for barge-in) and returns the
    utterance once `silence_ms` of silence follows at least `min_speech_ms` of speech.

    After `pause_ms` of silence it also reports a "pause" with the audio so far, so recognition
    can start before the endpoint, and "resume" if speech comes back before the endpoint (the
    early result is then stale). A pause after less than `min_speech_ms` of speech is a "blip"
    (a click or a cough: too short to be words so far), and speech that ends that short is
    "discarded" at the endpoint. Defaults measured in the README, "Phone latency"."""

    def __init__(self, threshold: float = 0.5, silence_ms: int = 600, min_speech_ms: int = 250,
                 max_utterance_s: float = 20.0, pre_roll_ms: int = 200, pause_ms: int = 256) -> None:
        self.threshold, self.low = threshold, threshold - 0.15
        self.silence_frames = max(1, silence_ms * 16 // FRAME)
        self.pause_frames = min(self.silence_frames, max(1, pause_ms * 16 // FRAME))
        self.min_speech_frames = max(1, min_speech_ms * 16 // FRAME)
        self.max_frames = int(max_utterance_s * 16000 / FRAME)
        self.pre_roll = max(1, pre_roll_ms * 16 // FRAME)
        self.default_silence_frames = self.silence_frames
        self.reset()

    def set_silence_ms(self, silence_ms: Optional[int]) -> None:
        """The endpoint silence from now on (None: the default): longer while a caller reads a
        number in groups."""
        self.silence_frames = (max(1, silence_ms * 16 // FRAME) if silence_ms is not None
                               else self.default_silence_frames)

    @property
    def speech_seconds(self) -> float:
        """Voiced time of the utterance in progress."""
        return self.speech_frames * FRAME / 16000 if self.in_speech else 0.0

    def reset(self) -> None:
        self.pending = np.zeros(0, np.float32)
        self.context = np.zeros(CONTEXT, np.float32)
        self.frames: List[np.ndarray] = []
        self.in_speech = False
        self.speech_frames = 0
        self.silent_run = 0
        self.paused = False

    def feed(self, samples: np.ndarray) -> List[VadEvent]:
        events: List[VadEvent] = []
        self.pending = np.concatenate([self.pending, samples.astype(np.float32)])
        usable = len(self.pending) // FRAME * FRAME
        if not usable:
            return events
        block, self.pending = self.pending[:usable], self.pending[usable:]
        probabilities = speech_probabilities(block, self.context)
        self.context = block[-CONTEXT:].copy()
        for frame, p in zip(block.reshape(-1, FRAME), probabilities):
            self.frames.append(frame)
            if not self.in_speech:
                self.frames = self.frames[-self.pre_roll:]
                if p >= self.threshold:
                    self.in_speech, self.speech_frames, self.silent_run = True, 1, 0
                    events.append(VadEvent("speech_start"))
                continue
            if p >= self.low:
                self.speech_frames += 1
                self.silent_run = 0
                if self.paused:
                    self.paused = False
                    events.append(VadEvent("resume"))
            else:
                self.silent_run += 1
            if self.silent_run >= self.silence_frames or len(self.frames) >= self.max_frames:
                if self.speech_frames >= self.min_speech_frames:
                    events.append(VadEvent("utterance", np.concatenate(self.frames), self.speech_seconds))
                else:
                    events.append(VadEvent("discarded"))
                self.frames, self.in_speech, self.speech_frames, self.silent_run = [], False, 0, 0
                self.paused = False
            elif self.silent_run == self.pause_frames:
                self.paused = True
                events.append(VadEvent("pause", np.concatenate(self.frames), self.speech_seconds)
                              if self.speech_frames >= self.min_speech_frames else VadEvent("blip"))
        return events

    def flush(self) -> Optional[np.ndarray]:
        """The utterance in progress, if any (the caller hung up or the stream ended)."""
        if self.in_speech and self.speech_frames >= self.min_speech_frames:
            audio = np.concatenate(self.frames)
            self.reset()
            return audio
        self.reset()
        return None
