"""`hotline call` (a recording through the running gateway) and `hotline eval speech|spoken`
(recordings through Whisper, and for `spoken` also the trained NLU model, in-process)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import requests

from hotline.core.settings import Settings


def call(settings: Settings, path: Path, out: str, session: Optional[str]) -> int:
    if not path.exists():
        print(f"error: no such file {path}", file=sys.stderr)
        return 2
    try:
        with path.open("rb") as handle:
            response = requests.post(f"{settings.gateway_url}/v1/voice/turn",
                                     files={"audio": (path.name, handle)},
                                     data={"session_id": session} if session else {}, timeout=120)
    except requests.ConnectionError:
        print(f"cannot reach the voice gateway at {settings.gateway_url}: start it with `make run`", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"error {response.status_code}: {response.json().get('detail', response.text)}", file=sys.stderr)
        return 1
    result = response.json()
    print(f"transcript: {result['transcript']}")
    print(f"intent:     {result['intent']} ({result['confidence'] or 0:.2f})")
    for reply in result["replies"]:
        print(f"reply:      {reply}")
    if result.get("audio_wav_base64"):
        import base64

        Path(out).write_bytes(base64.b64decode(result["audio_wav_base64"]))
        print(f"reply audio: {out}")
    else:
        print("reply audio: none (no text-to-speech voice loaded)")
    return 0


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


def eval_speech(settings: Settings, manifest: Path, as_json: bool, spoken: bool, band: str = "wide") -> int:
    reference_column = "text" if spoken else "transcript"
    try:
        rows = read_manifest(manifest, ["file", reference_column] + (["intent"] if spoken else []))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    predictions = transcribe_manifest(load_stt(settings), manifest, rows, reference_column, band)
    if spoken:
        from hotline.trainer.evaluation import classify, load_agent, score

        agent = load_agent(settings)
        # Empty or punctuation-only transcripts are classified too (as out_of_scope): no crash, and
        # they count against accuracy as a caller who was not understood.
        for item, row, parsed in zip(predictions, rows, classify(agent, [p["hypothesis"] for p in predictions])):
            item["intent"] = row["intent"]
            item.update(predicted=parsed["predicted"], confidence=parsed["confidence"])
    report: Dict[str, object] = {"cer": corpus_cer(predictions), "n": len(rows), "band": band}
    if spoken:
        scores = score([p["intent"] for p in predictions], [p["predicted"] for p in predictions])
        report.update(accuracy=scores["accuracy"], macro_f1=scores["macro_f1"])
    for item in predictions:
        del item["edits"], item["chars"]
    report["predictions"] = predictions
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        head = f"n={report['n']}  band={band}  CER={report['cer']:.3f}"
        if spoken:
            head += f"  intent accuracy={report['accuracy']:.3f}  macro-F1={report['macro_f1']:.3f}"
        print(head)
        for p in predictions:
            extra = f"  → {p['predicted']} ({p['confidence']:.2f}) expected {p['intent']}" if spoken else ""
            print(f"  {p['file']}: CER {p['cer']:.3f}  「{p['hypothesis']}」{extra}")
    return 0
