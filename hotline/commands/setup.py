"""`hotline setup`: train if needed, seed the records, assemble the Whisper model, prepare the
voice and render the fixed replies with it (so the first caller already hears cached audio)."""
from __future__ import annotations

from hotline.core.settings import get_settings


def cmd_setup(args) -> int:
    from actions.records.client import SqlRecordsClient
    from actions.records.seed import seed
    from hotline.trainer.training import train

    from voice_gateway.stt import ensure_whisper_model

    settings = get_settings()
    train(settings)
    added = seed(SqlRecordsClient(settings.resolved_database_url()))
    print(f"records ready ({added} demo rows added): {settings.resolved_database_url()}")
    if settings.stt_model_dir is None:
        print(f"speech model ready: {ensure_whisper_model(settings.whisper_dir)}")
    return prepare_voice(settings)


def prepare_voice(settings) -> int:
    import time

    from voice_gateway.engines import spoken_fixed_texts
    from voice_gateway.tts import NoVoice, load_voice
    from voice_gateway.tts.cache import CachedTTS

    started = time.perf_counter()
    try:
        voice = load_voice(settings)
    except NoVoice as error:
        print(f"warning: {error}. The phone line will be text only.")
        return 0
    print(f"voice ready: {voice.kind} {voice.name} ({voice.licence})")
    if settings.tts_cache:
        cache = CachedTTS(voice, settings.tts_cache_dir)
        rendered = cache.warm(spoken_fixed_texts(settings))
        print(f"fixed replies rendered: {rendered} new clauses in {time.perf_counter() - started:.0f} s ({cache.directory})")
    return 0


def register(sub) -> None:
    sub.add_parser("setup", help="train if needed and seed the records").set_defaults(func=cmd_setup)
