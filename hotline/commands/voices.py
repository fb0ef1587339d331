"""`hotline voices list | download NAME` and `hotline say "文本" --out x.wav`: which voices this
machine has, and what a reply sounds like (also through the phone line)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from hotline.core.settings import get_settings
from voice_gateway.tts.piper import DEFAULT_VOICE as PIPER_DEFAULT


def cmd_voices_list(args) -> int:
    from voice_gateway.tts import installed_voices
    from voice_gateway.tts.kokoro import DEFAULT_VOICE

    settings = get_settings()
    current = (settings.tts_engine, settings.tts_voice or (DEFAULT_VOICE if settings.tts_engine == "kokoro" else ""))
    print(f"{'':2}{'engine':8}{'voice':24}licence")
    for engine, voice, licence in installed_voices(settings):
        mark = "*" if engine == current[0] and current[1] in (voice, Path(voice).stem) else " "
        name = voice if len(voice) <= 22 else Path(voice).stem  # a Piper voice file: its path below
        print(f"{mark} {engine:8}{name:24}{licence}")
        if name != voice:
            print(f"{'':10}{voice}")
    print(f"(* = TTS_ENGINE={settings.tts_engine} TTS_VOICE={settings.tts_voice or '(default)'})")
    return 0


def cmd_voices_download(args) -> int:
    from voice_gateway.tts.piper import download_voice

    settings = get_settings()
    try:
        path = download_voice(args.name, settings.voices_dir)
    except OSError as error:
        print(f"download failed ({error}); place {args.name}.onnx and .onnx.json in {settings.voices_dir} "
              "or set TTS_VOICE to their path", file=sys.stderr)
        return 1
    print(f"voice ready: {path} (use it with TTS_ENGINE=piper TTS_VOICE={args.name})")
    return 0


def cmd_say(args) -> int:
    from voice_gateway.audio import (PHONE_RATE, float_to_pcm16, mulaw_decode, mulaw_encode, pcm16_to_float,
                                     resample, wav_bytes)
    from voice_gateway.tts import NoVoice, load_voice

    text = " ".join(args.text).strip()
    if not text:
        print("error: nothing to say", file=sys.stderr)
        return 2
    try:
        voice = load_voice(get_settings(), args.engine, args.voice)
    except NoVoice as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    chunks = list(voice.stream(text))
    seconds = time.perf_counter() - started
    pcm, rate = b"".join(c.pcm16 for c in chunks), voice.sample_rate
    if args.phone:  # what a caller hears: 8 kHz G.711 μ-law
        narrow = resample(pcm16_to_float(pcm), rate, PHONE_RATE)
        pcm, rate = mulaw_decode(mulaw_encode(float_to_pcm16(narrow))), PHONE_RATE
    Path(args.out).write_bytes(wav_bytes(pcm, rate))
    duration = len(pcm) / 2 / rate
    print(f"read as:  {voice.prepare(text)}")
    print(f"voice:    {voice.kind} {voice.name} ({voice.licence})")
    print(f"audio:    {args.out} ({duration:.1f} s at {rate} Hz{', phone band' if args.phone else ''}; "
          f"synthesised in {seconds:.2f} s)")
    return 0


def register(sub) -> None:
    voices = sub.add_parser("voices", help="text-to-speech voices")
    voices_sub = voices.add_subparsers(dest="what", required=True)
    voices_sub.add_parser("list", help="the voices this machine can load").set_defaults(func=cmd_voices_list)
    download = voices_sub.add_parser("download", help="a Piper voice with Piper's downloader (needs its network)")
    download.add_argument("name", nargs="?", default=PIPER_DEFAULT)
    download.set_defaults(func=cmd_voices_download)
    say = sub.add_parser("say", help="synthesise a reply into a WAV file with the configured voice")
    say.add_argument("text", nargs="+")
    say.add_argument("--out", default="say.wav")
    say.add_argument("--engine", default="", help="kokoro or piper (default: TTS_ENGINE)")
    say.add_argument("--voice", default="", help="default: TTS_VOICE")
    say.add_argument("--phone", action="store_true", help="through the 8 kHz μ-law phone band")
    say.set_defaults(func=cmd_say)
