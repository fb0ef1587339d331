"""Voice benchmark (not a test): prints numbers.

Simulated Twilio calls (real WebSocket clients speaking the Media Streams protocol, real-time
paced μ-law audio from the shared Mandarin recordings) against the whole stack started as
`hotline run` starts it. For each turn: the time from the end of speech to the first reply audio
byte, as the caller sees it (includes the endpointing silence) and as the gateway logs it (split
into STT, Rasa turn, TTS first chunk); p50/p95; peak RSS of every process; and how many
concurrent calls one machine sustains with p95 ≤ 2 s.

Usage: .venv/bin/python bench/voice_latency.py [--turns 30] [--levels 1,2,4,6] [--voice PATH]
Without a Mandarin voice in models/voices the English test voice (same size and architecture as
zh_CN-huayan-medium) stands in, so TTS timings are representative.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from actions.records.client import SqlRecordsClient  # noqa: E402
from actions.records.seed import seed  # noqa: E402
from bench.proc import memory_mb  # noqa: E402
from hotline.launcher import Stack  # noqa: E402
from hotline.settings import Settings  # noqa: E402
from tests.conftest import english_test_voice, free_port  # noqa: E402
from voice_gateway.audio import decode, float_to_pcm16, mulaw_encode, resample  # noqa: E402
from voice_gateway.tts import resolve_voice  # noqa: E402

AUDIO = ROOT / "tests" / "data" / "audio"
CLIPS = ["firered_aishell1_BAC009S0764W0121.wav", "fireredasr2s_hello_zh.wav", "cosyvoice_zero_shot_prompt.wav"]


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def mulaw_clip(name: str) -> bytes:
    return mulaw_encode(float_to_pcm16(resample(decode((AUDIO / name).read_bytes()).samples, 16000, 8000)))


async def one_call(url: str, clips, turns: int, results: list) -> None:
    stream_sid, call_sid = "MZ" + uuid.uuid4().hex, "CA" + uuid.uuid4().hex
    async with websockets.connect(url, max_size=None) as ws:
        inbox: asyncio.Queue = asyncio.Queue()

        async def receive():
            async for message in ws:
                data = json.loads(message)
                if data["event"] == "mark":  # play instantly: echo marks so the bot is not "speaking"
                    await ws.send(json.dumps({"event": "mark", "streamSid": stream_sid, "mark": data["mark"]}))
                inbox.put_nowait((time.perf_counter(), data))

        receiver = asyncio.ensure_future(receive())
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "streamSid": stream_sid, "start": {
            "streamSid": stream_sid, "callSid": call_sid, "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))

        async def send_frames(data: bytes, until_reply: bool = False) -> None:
            loop, next_at = asyncio.get_running_loop(), asyncio.get_running_loop().time()
            for start in range(0, len(data) - 159, 160):
                if until_reply and not inbox.empty():
                    return
                await ws.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                          "media": {"payload": base64.b64encode(data[start:start + 160]).decode()}}))
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - loop.time()))

        async def quiet(seconds: float) -> None:  # wait until the bot has stopped talking
            while True:
                try:
                    await asyncio.wait_for(inbox.get(), seconds)
                except asyncio.TimeoutError:
                    return

        await quiet(1.5)  # the greeting
        for turn in range(turns):
            clip = clips[turn % len(clips)]
            await send_frames(clip)
            end_of_speech = time.perf_counter()
            while not inbox.empty():  # anything already here belongs to the previous reply
                inbox.get_nowait()
            silence = asyncio.ensure_future(send_frames(b"\xff" * 8000 * 4, until_reply=True))
            try:
                while True:
                    at, message = await asyncio.wait_for(inbox.get(), 30)
                    if message["event"] == "media":
                        results.append(at - end_of_speech)
                        break
            except asyncio.TimeoutError:
                results.append(float("inf"))
            await silence
            await quiet(1.0)
        await ws.send(json.dumps({"event": "stop", "streamSid": stream_sid}))
        receiver.cancel()


async def run_calls(url: str, clips, calls: int, turns: int) -> list:
    results: list = []
    await asyncio.gather(*(one_call(url, clips[i % len(clips):] + clips[:i % len(clips)], turns, results)
                           for i in range(calls)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--levels", default="1,2,4,6")
    parser.add_argument("--voice", default=None)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="hotline-voice-bench-"))
    mandarin = resolve_voice("zh_CN-huayan-medium", ROOT / "models" / "voices")
    voice = args.voice or (str(mandarin) if mandarin else english_test_voice())
    settings = Settings(var_dir=var_dir, rasa_port=free_port(), action_port=free_port(), gateway_port=free_port(),
                        audiosocket_port=free_port(), tts_voice=voice)
    seed(SqlRecordsClient(settings.resolved_database_url()))
    clips = [mulaw_clip(name) for name in CLIPS]
    url = settings.gateway_url.replace("http", "ws") + "/twilio/media-stream"
    print(f"voice: {Path(voice).stem}")
    with Stack(settings) as stack:
        log = stack.logs_dir / "gateway.log"
        mark = log.stat().st_size
        observed = asyncio.run(run_calls(url, clips, calls=1, turns=args.turns))
        splits = [json.loads(m) for m in re.findall(r"turn timings (\{.*\})", log.read_text()[mark:])]
        print(f"\nsequential turns: n={len(observed)} (caller-observed, end of speech → first reply audio, "
              f"includes the 0.6 s endpointing silence)")
        print(f"  caller-observed: p50={pct(observed, 50):.2f} s  p95={pct(observed, 95):.2f} s")
        for key, label in (("total", "gateway (endpoint → first audio)"), ("stt", "STT"), ("rasa", "Rasa turn"),
                           ("tts_first", "TTS first chunk")):
            values = [s[key] for s in splits]
            print(f"  {label:<34} p50={pct(values, 50):.3f} s  p95={pct(values, 95):.3f} s")

        print("\nconcurrent calls (2 turns each):")
        sustained = 0
        for level in [int(x) for x in args.levels.split(",")]:
            results = asyncio.run(run_calls(url, clips, calls=level, turns=2))
            p95 = pct(results, 95)
            print(f"  {level} calls: caller-observed p50={pct(results, 50):.2f} s  p95={p95:.2f} s")
            if p95 <= 2.0:
                sustained = level
        print(f"  sustained with p95 ≤ 2 s: {sustained} concurrent calls")

        print("\nmemory (peak RSS):")
        total = 0.0
        for name, pid in stack.pids().items():
            mem = memory_mb(pid)
            total += mem["peak_rss_mb"]
            print(f"  {name:<14} {mem['peak_rss_mb']:.0f} MB (now {mem['rss_mb']:.0f} MB)")
        print(f"  whole stack    {total:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
