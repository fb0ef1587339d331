"""Audio in and out: decoding any container with PyAV, resampling with soxr, G.711 μ-law,
16-bit PCM and WAV. Internally speech is float32 mono at 16 kHz (what Whisper wants)."""
from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np
import soxr

STT_RATE = 16000
PHONE_RATE = 8000


class AudioError(ValueError):
    """The input is not decodable audio (or is empty)."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0


# What browsers, phones and recorders send. FFmpeg opens many more (playlists, images, network
# protocols); each extra demuxer is attack surface a voice upload does not need.
ACCEPTED_CONTAINERS = {"wav", "mp3", "ogg", "webm", "matroska", "flac", "mp4", "m4a", "aac", "amr"}


def decode(data: bytes, max_seconds: float = 60.0) -> Audio:
    """Any container/codec PyAV knows (WAV, MP3, OGG, WebM, …) → float32 mono 16 kHz."""
    import av

    if not data:
        raise AudioError("empty audio")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not set(container.format.name.split(",")) & ACCEPTED_CONTAINERS:
                raise AudioError(f"unsupported container {container.format.name!r}")
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise AudioError("no audio stream in the file")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=STT_RATE)
            chunks, total = [], 0
            for frame in container.decode(streams[0]):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > max_seconds * STT_RATE:
                        raise AudioError(f"audio longer than {max_seconds:.0f} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except AudioError:
        raise
    except Exception as error:  # PyAV raises many kinds for corrupt input
        raise AudioError(f"not decodable audio: {type(error).__name__}") from None
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if len(samples) == 0:
        raise AudioError("no audio samples")
    return Audio(samples, STT_RATE)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return samples
    return soxr.resample(samples, from_rate, to_rate).astype(samples.dtype, copy=False)


def pcm16_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_bytes(pcm16: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm16)
    return buffer.getvalue()


# G.711 μ-law, bit-exact with the classic Sun reference (the one CPython's audioop used):
# 16-bit samples are scaled to 14 bits, biased, and coded as sign/segment/mantissa.
_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def mulaw_encode(pcm16: bytes) -> bytes:
    pcm = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2").astype(np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + (0x84 >> 2)
    segment = np.searchsorted(_SEG_END, magnitude, side="left")
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    coded = np.where(segment >= 8, 0x7F ^ mask, ((segment << 4) | mantissa) ^ mask)
    return (coded & 0xFF).astype(np.uint8).tobytes()


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype("<i2")


_MULAW_TO_PCM = _mulaw_table()


def mulaw_decode(data: bytes) -> bytes:
    return _MULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)].tobytes()


def phone_band(samples: np.ndarray) -> np.ndarray:
    """What a caller's 16 kHz speech becomes after a telephone line: 8 kHz G.711 μ-law and back."""
    narrow = resample(samples.astype(np.float32), STT_RATE, PHONE_RATE)
    coded = mulaw_decode(mulaw_encode(float_to_pcm16(narrow)))
    return resample(pcm16_to_float(coded), PHONE_RATE, STT_RATE)
