"""Whisper decoding choices on real recordings (data/eval/stt_dev): character error rate and
seconds per utterance, wide band and through an 8 kHz μ-law phone line. Not a test: prints numbers,
and with --hypotheses DIR writes each variant's transcripts (the input of the recognition error
model, hotline/trainer/errors.py).

Usage: .venv/bin/python bench/stt_decoding.py [--manifest data/eval/stt_dev/manifest.tsv]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hotline.core.settings import Settings  # noqa: E402
from hotline.speech_eval import corpus_cer, load_stt, read_manifest, transcribe_manifest  # noqa: E402

VARIANTS = {
    "beam 1, no fallback (0.1)": dict(beam_size=1, temperature_fallback=False, hotwords=True),
    "beam 1, no fallback, no hotwords": dict(beam_size=1, temperature_fallback=False, hotwords=False),
    "beam 5, no fallback": dict(beam_size=5, temperature_fallback=False, hotwords=False),
    "beam 5, fallback (default)": dict(beam_size=5, temperature_fallback=True, hotwords=False),
    "beam 5, fallback, hotwords": dict(beam_size=5, temperature_fallback=True, hotwords=True),
    # Encoder window fitted to short utterances (faster-whisper chunk_length; longer audio keeps 30 s).
    "beam 5, fallback, 10 s window": dict(beam_size=5, temperature_fallback=True, hotwords=False, window_s=10),
    "beam 5, fallback, 15 s window": dict(beam_size=5, temperature_fallback=True, hotwords=False, window_s=15),
    "beam 5, fallback, 20 s window": dict(beam_size=5, temperature_fallback=True, hotwords=False, window_s=20),
    "beam 5, no fallback, 10 s window": dict(beam_size=5, temperature_fallback=False, hotwords=False, window_s=10),
    "beam 5, fallback on loops only, 10 s window": dict(beam_size=5, temperature_fallback=True, hotwords=False,
                                                        window_s=10, fallback_on_low_confidence=False),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", default=str(ROOT / "data/eval/stt_dev/manifest.tsv"))
    parser.add_argument("--bands", default="wide,phone")
    parser.add_argument("--only", default="")
    parser.add_argument("--hypotheses", help="folder for <variant>.<band>.json transcripts")
    parser.add_argument("--max-seconds", type=float, default=0.0, help="only recordings up to this long")
    args = parser.parse_args()
    manifest = Path(args.manifest)
    rows = read_manifest(manifest, ["file", "transcript"])
    if args.max_seconds:
        rows = [r for r in rows if float(r.get("duration") or 0) <= args.max_seconds]
    settings = Settings()
    print(f"{len(rows)} recordings from {manifest}")
    print(f"{'variant':<36}{'band':>6}{'CER':>8}{'long CER':>10}{'s p50':>8}{'s p95':>8}{'empty':>7}")
    for name, options in VARIANTS.items():
        if args.only and name not in args.only.split("|"):
            continue
        stt = load_stt(settings, **options)
        for band in args.bands.split(","):
            results = transcribe_manifest(stt, manifest, rows, "transcript", band)
            seconds = sorted(r.get("seconds", 0.0) for r in results)
            long_ones = [r for r in results if r["chars"] > 60]
            print(f"{name:<36}{band:>6}{corpus_cer(results):>8.3f}"
                  f"{corpus_cer(long_ones) if long_ones else float('nan'):>10.3f}"
                  f"{statistics.median(seconds):>8.2f}{seconds[int(0.95 * (len(seconds) - 1))]:>8.2f}"
                  f"{sum(1 for r in results if not r['hypothesis']):>7}", flush=True)
            if args.hypotheses:
                out = Path(args.hypotheses)
                out.mkdir(parents=True, exist_ok=True)
                slug = "".join(ch if ch.isalnum() else "_" for ch in name)
                (out / f"{slug}.{band}.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
