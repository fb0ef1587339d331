"""Loading the speech engines once at start-up, and what /readyz reports about them."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, Optional

from hotline.settings import Settings
from voice_gateway.bot import RasaClient
from voice_gateway.pipeline import VoicePipeline
from voice_gateway.stt import SpeechToText, WhisperSTT, ensure_whisper_model
from voice_gateway.tts import PiperTTS, resolve_voice

logger = logging.getLogger(__name__)


@dataclass
class Engines:
    pipeline: VoicePipeline
    status: Dict[str, object] = field(default_factory=dict)

    @property
    def bot(self) -> RasaClient:
        return self.pipeline.bot


def load_engines(settings: Settings) -> Engines:
    status: Dict[str, object] = {}
    stt: Optional[SpeechToText] = None
    tts: Optional[PiperTTS] = None
    if settings.load_speech:
        model_dir = settings.whisper_dir
        if settings.stt_model_dir is None:
            ensure_whisper_model(model_dir)
        stt = WhisperSTT(model_dir, threads=settings.stt_threads, beam_size=settings.stt_beam_size,
                         temperature_fallback=settings.stt_temperature_fallback, hotwords=settings.stt_hotwords)
        status["stt"] = {"engine": "faster-whisper", "model": str(model_dir)}
        voice_path = resolve_voice(settings.tts_voice, settings.voices_dir)
        if voice_path is None:
            status["tts"] = {"voice": None, "warning": (
                f"voice {settings.tts_voice!r} not found (looked in {settings.voices_dir}): replies are text only. "
                "Run `hotline voices download zh_CN-huayan-medium` where the network allows, or set TTS_VOICE "
                "to an .onnx voice with its .onnx.json.")}
            logger.warning(status["tts"]["warning"])
        else:
            tts = PiperTTS(voice_path)
            status["tts"] = {"voice": tts.name, "language": tts.language, "sample_rate": tts.sample_rate,
                             "mandarin": tts.mandarin}
            if not tts.mandarin:
                logger.warning("TTS voice %s is not Mandarin (%s): fine for tests, not for callers",
                               tts.name, tts.language)
    else:
        status["stt"] = status["tts"] = "disabled (LOAD_SPEECH=false)"
    bot = RasaClient(settings.rasa_url, settings.resolved_rasa_token())
    return Engines(VoicePipeline(bot, stt, tts, stt_concurrency=max(1, settings.stt_threads)), status)
