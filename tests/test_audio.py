"""Audio plumbing: G.711 μ-law against CPython's audioop (the classic Sun reference), decoding,
resampling, WAV."""
from __future__ import annotations

import io
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

from voice_gateway.audio import (AudioError, decode, float_to_pcm16, mulaw_decode, mulaw_encode, pcm16_to_float,
                                 resample, wav_bytes)

AUDIO = Path(__file__).parent / "data" / "audio"

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # removed in Python 3.13; here only as the independent reference


def test_mulaw_encode_is_bit_exact_for_every_16_bit_sample():
    every_sample = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert mulaw_encode(every_sample) == audioop.lin2ulaw(every_sample, 2)


def test_mulaw_decode_is_bit_exact_for_every_code():
    every_code = bytes(range(256))
    assert mulaw_decode(every_code) == audioop.ulaw2lin(every_code, 2)


def test_mulaw_known_vectors():
    # G.711: silence codes to 0xFF, full scale to 0x80 / 0x00, and 0xFF decodes to 0.
    assert mulaw_encode(np.array([0, 32767, -32768], dtype="<i2").tobytes()) == b"\xff\x80\x00"
    assert np.frombuffer(mulaw_decode(b"\xff\x7f\x80\x00"), "<i2").tolist() == [0, 0, 32124, -32124]


def test_decode_wav_and_other_containers(tmp_path):
    original = decode((AUDIO / "fireredasr2s_hello_zh.wav").read_bytes())
    assert original.sample_rate == 16000 and 1.5 < original.duration < 4
    import av

    path = tmp_path / "clip.flac"  # re-encode to another container/codec and read it back
    pcm = (original.samples * 32767).astype("<i2")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=16000)
        stream.layout = "mono"
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    again = decode(path.read_bytes())
    assert abs(again.duration - original.duration) < 0.1


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_decode_rejects_garbage(data):
    with pytest.raises(AudioError):
        decode(data)


def test_decode_rejects_too_long_audio():
    long_wav = wav_bytes(np.zeros(16000 * 5, "<i2").tobytes(), 16000)
    with pytest.raises(AudioError, match="longer"):
        decode(long_wav, max_seconds=2)


def test_resample_and_pcm_round_trip():
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32) * 0.5
    eight = resample(tone, 16000, 8000)
    assert len(eight) == 8000
    back = pcm16_to_float(float_to_pcm16(tone))
    assert np.max(np.abs(back - tone)) < 1e-4
    with wave.open(io.BytesIO(wav_bytes(float_to_pcm16(eight), 8000))) as wav:
        assert wav.getframerate() == 8000 and wav.getnframes() == 8000
