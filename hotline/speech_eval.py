"""Recordings through Whisper, for `hotline eval speech|spoken` and bench/stt_decoding.py: reading a
manifest, loading the recogniser with the configured decoding, character error rates."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List

from hotline.core.settings import Settings


def read_manifest(path: Path, columns: List[str]) -> List[Dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = set(columns) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: header needs {', '.join(columns)} (missing {', '.join(sorted(missing))})")
        return [row for row in reader if (row.get("file") or "").strip()]


def load_stt(settings: Settings, **decoding):
    from voice_gateway.stt import WhisperSTT, ensure_whisper_model

    model_dir = settings.stt_model_dir or ensure_whisper_model(settings.whisper_dir)
    options = dict(beam_size=settings.stt_beam_size, temperature_fallback=settings.stt_temperature_fallback,
                   hotwords=settings.stt_hotwords)
    return WhisperSTT(model_dir, threads=settings.stt_threads, **{**options, **decoding})


def transcribe_manifest(stt, manifest: Path, rows: List[Dict[str, str]], reference_column: str,
                        band: str = "wide") -> List[Dict[str, object]]:
    """One row per recording: file, reference, hypothesis, cer, seconds (and error, if any)."""
    from voice_gateway.audio import AudioError, decode, phone_band
    from voice_gateway.stt import edit_distance, normalize_for_cer

    results = []
    for row in rows:
        reference = row[reference_column]
        item: Dict[str, object] = {"file": row["file"], "reference": reference}
        try:
            samples = decode((manifest.parent / row["file"]).read_bytes()).samples
            transcript = stt.transcribe(phone_band(samples) if band == "phone" else samples)
            item["hypothesis"], item["seconds"] = transcript.text, round(transcript.seconds, 3)
        except (OSError, AudioError) as error:
            item["hypothesis"], item["error"] = "", str(error)
        item["edits"] = edit_distance(reference, item["hypothesis"])
        item["chars"] = len(normalize_for_cer(reference))
        item["cer"] = round(item["edits"] / max(1, item["chars"]), 4)
        results.append(item)
    return results


def corpus_cer(results: List[Dict[str, object]]) -> float:
    chars = sum(r["chars"] for r in results)
    return round(sum(r["edits"] for r in results) / chars, 4) if chars else 0.0

