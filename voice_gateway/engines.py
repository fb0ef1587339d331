"""Loading the speech engines once at start-up, and what /readyz reports about them."""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Dict, Optional

from hotline.core.settings import Settings
from voice_gateway.rasa_client import APOLOGY, RasaClient
from voice_gateway import prompts
from voice_gateway.pipeline import VoicePipeline
from voice_gateway.stt import SpeechToText, WhisperSTT, ensure_whisper_model
from voice_gateway.switchboard import SKILL_GROUPS, Switchboard, TwilioCallControl
from voice_gateway.tts import NoVoice, TextToSpeech, load_voice
from voice_gateway.tts.cache import CachedTTS, fixed_texts

logger = logging.getLogger(__name__)


@dataclass
class Engines:
    pipeline: VoicePipeline
    switchboard: Switchboard
    status: Dict[str, object] = field(default_factory=dict)

    @property
    def bot(self) -> RasaClient:
        return self.pipeline.bot


def load_engines(settings: Settings) -> Engines:
    status: Dict[str, object] = {}
    stt: Optional[SpeechToText] = None
    tts: Optional[TextToSpeech] = None
    if settings.load_speech:
        model_dir = settings.whisper_dir
        if settings.stt_model_dir is None:
            ensure_whisper_model(model_dir)
        stt = WhisperSTT(model_dir, threads=settings.stt_threads, beam_size=settings.stt_beam_size,
                         temperature_fallback=settings.stt_temperature_fallback, hotwords=settings.stt_hotwords,
                         window_s=settings.stt_window_s)
        status["stt"] = {"engine": "faster-whisper", "model": str(model_dir)}
        try:
            voice = load_voice(settings)
        except NoVoice as error:
            status["tts"] = {"voice": None, "engine": settings.tts_engine,
                             "warning": f"{error}. Replies are text only: callers hear nothing."}
            logger.error("no voice: %s", status["tts"]["warning"])
        else:
            tts = CachedTTS(voice, settings.tts_cache_dir) if settings.tts_cache else voice
            status["tts"] = tts.describe()
            if not voice.mandarin:
                logger.warning("TTS voice %s is not Mandarin (%s): fine for tests, not for callers",
                               voice.name, voice.language)
            logger.info("voice: %s %s (%s), %s", voice.kind, voice.name, voice.language, voice.licence)
    else:
        status["stt"] = status["tts"] = "disabled (LOAD_SPEECH=false)"
    bot = RasaClient(settings.rasa_url, settings.resolved_rasa_token(), timeout=settings.rasa_timeout_s)
    pipeline = VoicePipeline(bot, stt, tts, stt_workers=settings.stt_workers,
                             tts_workers=settings.tts_workers)
    control = None
    if settings.twilio_account_sid and settings.twilio_auth_token:
        control = TwilioCallControl(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base)
    switchboard = Switchboard(settings.max_calls, {g: settings.transfer_target(g) for g in SKILL_GROUPS}, control)
    status["calls"] = {"max_calls": settings.max_calls, "twilio_transfer": control is not None}
    if isinstance(tts, CachedTTS):
        warm_tts_cache(tts, settings)
    return Engines(pipeline, switchboard, status)


def spoken_fixed_texts(settings: Settings):
    """The domain's responses and the gateway's own prompts."""
    return prompts.all_prompts() + [APOLOGY] + \
        fixed_texts(settings.project_root / "bot" / "domain.yml")


def warm_tts_cache(tts: CachedTTS, settings: Settings) -> threading.Thread:
    """Render the fixed replies in a background thread. The thread itself runs at low priority;
    the engine's second ONNX thread does not, so the first start-up shares the CPU with early calls."""
    texts = spoken_fixed_texts(settings)

    def warm() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)  # this thread only (Linux)
        except (AttributeError, OSError):
            pass
        try:
            rendered = tts.warm(texts)
            logger.info("TTS cache ready in %s (%d clauses rendered now)", tts.directory, rendered)
        except Exception:
            logger.exception("TTS cache warm-up failed: fixed replies will be synthesised live")

    thread = threading.Thread(target=warm, name="tts-cache", daemon=True)
    thread.start()
    return thread
