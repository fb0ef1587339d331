"""`hotline call` (a recording through the running gateway) and `hotline eval speech|spoken`
(recordings through Whisper, and for `spoken` also the trained NLU model, in-process)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import requests

from hotline.settings import Settings


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


def eval_speech(settings: Settings, manifest: Path, as_json: bool, spoken: bool) -> int:
    from voice_gateway.audio import AudioError, decode
    from voice_gateway.stt import WhisperSTT, edit_distance, ensure_whisper_model, normalize_for_cer

    reference_column = "text" if spoken else "transcript"
    try:
        rows = read_manifest(manifest, ["file", reference_column] + (["intent"] if spoken else []))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model_dir = settings.stt_model_dir or ensure_whisper_model(settings.whisper_dir)
    stt = WhisperSTT(model_dir, threads=settings.stt_threads, beam_size=settings.stt_beam_size)
    agent = None
    if spoken:
        from hotline.evaluation import classify, load_agent, score

        agent = load_agent(settings)
    predictions, edits, chars = [], 0, 0
    for row in rows:
        audio_path = manifest.parent / row["file"]
        reference = row[reference_column]
        item: Dict[str, object] = {"file": row["file"], reference_column: reference}
        try:
            transcript = stt.transcribe(decode(audio_path.read_bytes()).samples).text
        except (OSError, AudioError) as error:
            transcript, item["error"] = "", str(error)
        item["transcript"] = transcript
        distance = edit_distance(reference, transcript)
        edits, chars = edits + distance, chars + len(normalize_for_cer(reference))
        item["cer"] = round(distance / max(1, len(normalize_for_cer(reference))), 4)
        if spoken:
            item["intent"] = row["intent"]
            item.update({k: v for k, v in classify(agent, [transcript or " "])[0].items() if k != "fallback"})
        predictions.append(item)
    report: Dict[str, object] = {"cer": round(edits / chars, 4) if chars else 0.0, "n": len(rows)}
    if spoken:
        scores = score([p["intent"] for p in predictions], [p["predicted"] for p in predictions])
        report.update(accuracy=scores["accuracy"], macro_f1=scores["macro_f1"])
    report["predictions"] = predictions
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        head = f"n={report['n']}  CER={report['cer']:.3f}"
        if spoken:
            head += f"  intent accuracy={report['accuracy']:.3f}  macro-F1={report['macro_f1']:.3f}"
        print(head)
        for p in predictions:
            extra = f"  → {p['predicted']} ({p['confidence']:.2f}) expected {p['intent']}" if spoken else ""
            print(f"  {p['file']}: CER {p['cer']:.3f}  「{p['transcript']}」{extra}")
    return 0
