"""Voice benchmark (not a test): prints numbers for each candidate voice.

For ten of the bot's phone replies (seven fixed responses of the domain and three filled-in
lookups with serials, dates, order and case numbers), each voice:
- synthesises the reply clause by clause (the engine the gateway uses, no cache);
- is heard by the project's recogniser (Whisper base, the gateway's decoding settings) at 16 kHz
  ("native") and after an 8 kHz G.711 μ-law line ("phone"); CER is counted on the spoken form of
  both texts (the reply and the transcript read through the same normaliser, so 2027 and 二零二七
  are the same characters), over Chinese characters and digits;
- first clause: the time to synthesise the first piece of every phone reply of the domain (the
  quick-start split the gateway applies), live, and as served (fixed clauses from the cache);
- real-time factor (synthesis time / audio time), load time and peak RSS of the process.

Usage: .venv/bin/python bench/tts_voices.py [--voices kokoro:jm_kumo,kokoro:jf_nezumi,...]
Run it alone: two cores, timing.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import yaml  # noqa: E402

from hotline.core.settings import Settings  # noqa: E402
from voice_gateway.audio import STT_RATE, pcm16_to_float, phone_band, resample  # noqa: E402
from voice_gateway.stt import WhisperSTT, edit_distance, ensure_whisper_model, normalize_for_cer  # noqa: E402
from voice_gateway.tts import load_voice  # noqa: E402
from voice_gateway.tts.reading import quick_start, speakable  # noqa: E402

DOMAIN = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))
FIXED = ["utter_greet", "utter_ask_serial_number", "utter_ask_order_number", "utter_service_hours",
         "utter_scam_warning", "utter_goodbye", "utter_ask_case_number"]
LOOKUPS = ["序列号尾号7F3K的iPhone 15在有限保修期内，保修至2027年3月5日。可以为您预约维修。",
           "订单W1000000002（iPhone 15 Pro）已发货，承运商顺丰速运，预计2026年12月9日送达。",
           "已为您登记深圳的维修预约，案例编号123 456 789，我再说一遍，123 456 789。"]


def phone_text(name: str) -> str:
    variants = DOMAIN["responses"][name]
    return next((v["text"] for v in variants if v.get("channel") == "phone"), variants[0]["text"])


def all_phone_replies() -> List[str]:
    return [phone_text(name) for name in sorted(DOMAIN["responses"])
            if "{" not in phone_text(name)] + LOOKUPS


def canonical(text: str) -> str:
    """Both sides of the comparison in the voice's spoken form, digits unified (幺 = 一, 两 = 二)."""
    return normalize_for_cer(speakable(text)).replace("幺", "一").replace("两", "二")


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(spec: str, stt: WhisperSTT, settings: Settings) -> dict:
    engine, _, voice_name = spec.partition(":")
    started = time.perf_counter()
    voice = load_voice(settings, engine, voice_name)
    load_s = time.perf_counter() - started
    replies = [phone_text(n) for n in FIXED] + LOOKUPS
    synth_s = audio_s = 0.0
    edits = {"native": 0, "phone": 0}
    chars = 0
    worst = []
    for reply in replies:
        t = time.perf_counter()
        pcm = b"".join(voice.synthesize(c) for c in voice.clauses(reply))
        synth_s += time.perf_counter() - t
        audio_s += len(pcm) / 2 / voice.sample_rate
        wide = resample(pcm16_to_float(pcm), voice.sample_rate, STT_RATE)
        reference = canonical(reply)
        chars += len(reference)
        for band, samples in (("native", wide), ("phone", phone_band(wide))):
            heard = stt.transcribe(samples).text
            e = edit_distance(reference, canonical(heard))
            edits[band] += e
            if band == "phone":
                worst.append((e / max(1, len(reference)), reply, heard))
    firsts = []
    for reply in all_phone_replies():
        first = quick_start(voice.clauses(reply)[0])[0]
        t = time.perf_counter()
        voice.synthesize(first)
        firsts.append(time.perf_counter() - t)
    worst.sort(reverse=True)
    return {"spec": spec, "licence": voice.licence, "load_s": load_s, "rtf": synth_s / audio_s,
            "cer_native": edits["native"] / chars, "cer_phone": edits["phone"] / chars,
            "first_p50": statistics.median(firsts), "first_p95": pct(firsts, 95), "first_n": len(firsts),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "worst": worst[:2]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voices", default="kokoro:jm_kumo,kokoro:jf_nezumi,kokoro:jf_alpha,"
                                            "kokoro:jf_gongitsune,kokoro:jf_tebukuro")
    args = parser.parse_args()
    settings = Settings()
    stt = WhisperSTT(ensure_whisper_model(settings.whisper_dir), threads=settings.stt_threads,
                     beam_size=settings.stt_beam_size, temperature_fallback=settings.stt_temperature_fallback,
                     window_s=settings.stt_window_s)
    print(f"{'voice':24}{'CER 16k':>8}{'CER 8k':>8}{'RTF':>6}{'first p50':>10}{'p95':>6}{'load':>6}{'RSS MB':>8}")
    for spec in args.voices.split(","):
        r = measure(spec, stt, settings)
        print(f"{r['spec']:24}{r['cer_native']:8.3f}{r['cer_phone']:8.3f}{r['rtf']:6.2f}{r['first_p50']:10.2f}"
              f"{r['first_p95']:6.2f}{r['load_s']:6.1f}{r['rss_mb']:8.0f}", flush=True)
        for cer, reply, heard in r["worst"]:
            print(f"    worst {cer:.2f}: {reply} → {heard}")
    print(f"(first clause: live synthesis of the first piece of {r['first_n']} phone replies; with the cache, "
          "fixed first clauses are a memory read)")


if __name__ == "__main__":
    main()
