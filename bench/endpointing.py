"""Endpointing choices on real recordings (not a test: prints numbers).

Each recording of data/eval/stt_dev is one utterance read aloud, fed through the phone band in
20 ms frames and followed by 2 s of silence. For each endpoint silence: how many recordings are cut
into more than one utterance (a caller interrupted mid-sentence). For each speculation pause: how
many speculative recognitions start per recording and how many of them are wasted (speech resumed),
and how much of the endpoint silence is left for recognition to finish unseen.

Usage: .venv/bin/python bench/endpointing.py
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from voice_gateway.audio import decode, phone_band  # noqa: E402
from voice_gateway.vad import Endpointer  # noqa: E402

STT_DEV = ROOT / "data" / "eval" / "stt_dev"


def recordings():
    with (STT_DEV / "manifest.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            samples = phone_band(decode((STT_DEV / row["file"]).read_bytes()).samples)
            yield np.concatenate([np.zeros(8000, np.float32), samples, np.zeros(32000, np.float32)])


def run(endpointer: Endpointer, audio: np.ndarray):
    kinds = []
    for start in range(0, len(audio), 320):
        kinds += [e.kind for e in endpointer.feed(audio[start:start + 320])]
    return kinds


def main() -> int:
    clips = list(recordings())
    print(f"{len(clips)} recordings (data/eval/stt_dev, phone band)\n")
    print(f"{'endpoint silence':>18}{'cut in two or more':>22}")
    for silence in (300, 400, 500, 600, 700, 800):
        cut = sum(1 for audio in clips if run(Endpointer(silence_ms=silence), audio).count("utterance") > 1)
        print(f"{silence:>15} ms{cut:>16} / {len(clips)}")
    print(f"\n{'pause (600 ms endpoint)':>24}{'started per clip':>18}{'wasted':>10}{'left for STT':>14}")
    for pause in (160, 192, 256, 320, 416):
        started = wasted = 0
        for audio in clips:
            kinds = run(Endpointer(silence_ms=600, pause_ms=pause), audio)
            started += kinds.count("pause")
            wasted += kinds.count("resume")
        left = 600 - (pause * 16 // 512) * 32
        print(f"{pause:>21} ms{started / len(clips):>18.2f}{wasted / max(1, started):>10.0%}{left:>11} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
