"""`hotline voices download [NAME]`: a Piper voice with Piper's own downloader."""
from __future__ import annotations

import sys

from hotline.core.settings import Settings, get_settings


def cmd_voices_download(args) -> int:
    from voice_gateway.tts import download_voice

    settings = get_settings()
    try:
        path = download_voice(args.name, settings.voices_dir)
    except OSError as error:
        print(f"download failed ({error}); place {args.name}.onnx and .onnx.json in {settings.voices_dir} "
              "or set TTS_VOICE to their path", file=sys.stderr)
        return 1
    print(f"voice ready: {path}")
    return 0


def register(sub) -> None:
    voices = sub.add_parser("voices", help="Piper voices")
    voices_sub = voices.add_subparsers(dest="what", required=True)
    download = voices_sub.add_parser("download", help="download a voice with Piper's downloader")
    download.add_argument("name", nargs="?", default=Settings.__fields__["tts_voice"].default)
    download.set_defaults(func=cmd_voices_download)
