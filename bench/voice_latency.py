"""Voice benchmark (not a test): prints numbers.

Simulated Twilio calls (real WebSocket clients speaking the Media Streams protocol: 20 ms μ-law
frames paced in real time and sent continuously, silence included, as Twilio does; marks echoed
when the audio they follow would have finished playing) against the whole stack started as
`hotline run` starts it. Callers speak real phone-band Mandarin recordings of 1–4 s
(data/eval/stt_dev plus the shared clips), after 1 s of silence; a caller waits for the reply to
finish playing (at most 4 s) and then speaks again, barging in if the bot is still talking.

For each turn: the time from the end of the caller's speech (found in the clip by Silero VAD) to
the first reply audio frame, as the caller sees it: endpointing included. Reported for
sequential turns and for 1, 2, 4 and 6 calls started 1 s apart: p50/p95, unanswered turns (no
reply audio within 10 s), the gateway's latency split and STT queue wait (from its log), calls
refused as busy, and the peak RSS of every process.

Usage: .venv/bin/python bench/voice_latency.py [--turns 24] [--levels 1,2,4,6] [--engine kokoro --voice NAME]
The voice is the default one (Kokoro speaking Mandarin) unless --engine/--voice say otherwise
(e.g. --engine piper --voice PATH/en_US-joe-medium.onnx for the English test voice).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import List, Optional

import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from actions.records.client import SqlRecordsClient  # noqa: E402
from actions.records.seed import seed  # noqa: E402
from bench.proc import memory_mb  # noqa: E402
from hotline.launcher import Stack  # noqa: E402
from hotline.core.settings import Settings  # noqa: E402
from hotline.cluster import free_port  # noqa: E402
from voice_gateway.audio import decode, float_to_pcm16, mulaw_encode, phone_band, resample  # noqa: E402
from voice_gateway.vad import FRAME, speech_probabilities  # noqa: E402

SHARED = ROOT / "tests" / "data" / "audio"
STT_DEV = ROOT / "data" / "eval" / "stt_dev"
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
SILENCE = b"\xff" * FRAME_BYTES
UNANSWERED_AFTER = 10.0


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Clip:
    """Phone-band μ-law audio and where its speech ends (seconds from the clip start)."""

    def __init__(self, path: Path) -> None:
        samples = decode(path.read_bytes()).samples
        probabilities = speech_probabilities(np.concatenate(
            [samples, np.zeros(-len(samples) % FRAME, np.float32)]), np.zeros(64, np.float32))
        voiced = np.nonzero(probabilities >= 0.5)[0]
        self.name = path.name
        self.speech_end = (voiced[-1] + 1) * FRAME / 16000 if len(voiced) else len(samples) / 16000
        self.mulaw = mulaw_encode(float_to_pcm16(resample(phone_band(samples), 16000, 8000)))


def load_clips(low: float = 1.0, high: float = 4.0) -> List[Clip]:
    paths = [SHARED / "firered_aishell1_BAC009S0764W0121.wav", SHARED / "fireredasr2s_hello_zh.wav"]
    with (STT_DEV / "manifest.tsv").open(encoding="utf-8") as handle:
        paths += [STT_DEV / row["file"] for row in csv.DictReader(handle, delimiter="\t")
                  if low <= float(row["duration"]) <= high]
    return [clip for clip in map(Clip, paths) if low <= clip.speech_end <= high + 0.5]


class Caller:
    """One simulated Twilio call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stream_sid, self.call_sid = "MZ" + uuid.uuid4().hex, "CA" + uuid.uuid4().hex
        self.script: List[bytes] = []  # frames to speak; silence when empty
        self.sent = 0
        self.media_at: List[float] = []  # arrival time of each reply media frame
        self.playing_until = 0.0  # when the audio received so far would finish playing
        self.busy = False
        self.closed = False

    async def run(self, clips: List[Clip], turns: int, results: list) -> None:
        async with websockets.connect(self.url, max_size=None) as ws:
            self.ws = ws
            receiver = asyncio.ensure_future(self._receive())
            sender = asyncio.ensure_future(self._send())
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(json.dumps({"event": "start", "streamSid": self.stream_sid, "start": {
                "streamSid": self.stream_sid, "callSid": self.call_sid, "tracks": ["inbound"],
                "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                        "channels": 1}}}))
            await self._listen(max_wait=4.0, first=1.5)  # the greeting
            for turn in range(turns):
                if self.closed:
                    break
                clip = clips[turn % len(clips)]
                await self._idle(1.0)
                heard = len(self.media_at)
                started = await self._speak(clip.mulaw)
                end_of_speech = started + clip.speech_end
                first = await self._first_media_after(heard, end_of_speech)
                results.append((self.call_sid, first - end_of_speech if first is not None else float("inf")))
                await self._listen(max_wait=4.0)
            hung_up, self.closed = self.closed, True
            if not hung_up:
                try:
                    await ws.send(json.dumps({"event": "stop", "streamSid": self.stream_sid}))
                except websockets.ConnectionClosed:
                    pass
            sender.cancel()
            receiver.cancel()

    async def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for message in self.ws:
                data = json.loads(message)
                now = time.perf_counter()
                if data["event"] == "media":
                    self.media_at.append(now)
                    self.playing_until = max(self.playing_until, now) + 0.02
                elif data["event"] == "mark":
                    loop.call_later(max(0.0, self.playing_until - now), self._echo, data["mark"]["name"])
                elif data["event"] == "clear":
                    self.playing_until = now
        except websockets.ConnectionClosed:
            pass
        self.closed = True  # also after a clean close, which ends the loop without an exception

    def _echo(self, name: str) -> None:
        if not self.closed:
            asyncio.ensure_future(self.ws.send(json.dumps(
                {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})))

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self.closed:
            frame = self.script.pop(0) if self.script else SILENCE
            try:
                await self.ws.send(json.dumps({"event": "media", "streamSid": self.stream_sid,
                                               "media": {"payload": base64.b64encode(frame).decode()}}))
            except websockets.ConnectionClosed:
                self.closed = True
                return
            self.sent += 1
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _speak(self, mulaw: bytes) -> float:
        """Queue the clip; returns the time its first frame went out."""
        frames = [mulaw[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff") for i in range(0, len(mulaw), FRAME_BYTES)]
        self.script.extend(frames)
        queued_at = self.sent + len(self.script) - len(frames)
        while self.sent <= queued_at and not self.closed:  # (a refused call is hung up on)
            await asyncio.sleep(0.005)
        return time.perf_counter() - 0.02

    async def _first_media_after(self, heard: int, since: float) -> Optional[float]:
        deadline = since + UNANSWERED_AFTER
        while time.perf_counter() < deadline and not self.closed:
            later = [t for t in self.media_at[heard:] if t > since]
            if later:
                return later[0]
            await asyncio.sleep(0.005)
        return None

    async def _listen(self, max_wait: float, first: float = 0.0) -> None:
        """Until the reply has finished playing, at most `max_wait` seconds."""
        await asyncio.sleep(first)
        deadline = time.perf_counter() + max_wait
        while time.perf_counter() < deadline and time.perf_counter() < self.playing_until + 0.3:
            await asyncio.sleep(0.05)

    async def _idle(self, seconds: float) -> None:
        self.script.extend([SILENCE] * int(seconds / 0.02))


async def run_calls(url: str, clips: List[Clip], calls: int, turns: int, stagger: float = 1.0) -> list:
    results: list = []

    async def call(i: int) -> None:
        await asyncio.sleep(i * stagger)
        rotated = clips[(i * 3) % len(clips):] + clips[:(i * 3) % len(clips)]
        await Caller(url).run(rotated, turns, results)

    await asyncio.gather(*(call(i) for i in range(calls)))
    return results


def splits_since(log: Path, mark: int) -> List[dict]:
    return [json.loads(m) for m in re.findall(r"turn timings (\{.*\})", log.read_text()[mark:])]


def print_split(splits: List[dict]) -> None:
    for key, label in (("total", "gateway (endpoint → first audio)"), ("queue", "STT queue wait"),
                       ("stt", "STT (after the endpoint)"), ("rasa", "Rasa turn"), ("tts_first", "TTS first audio")):
        values = [s[key] for s in splits if key in s]
        if values:
            print(f"    {label:<34} p50={pct(values, 50):.3f} s  p95={pct(values, 95):.3f} s")
    speculative = [s for s in splits if "speculative" in s]
    if speculative:
        hits = sum(1 for s in speculative if s["speculative"])
        print(f"    transcript ready at the endpoint   {hits}/{len(speculative)} turns")
    cached = [s for s in splits if "cached" in s]
    if cached:
        print(f"    first audio from the TTS cache     {sum(1 for s in cached if s['cached'])}/{len(cached)} turns")


def report(label: str, results: list, refused=frozenset()) -> None:
    """Turns of calls refused as busy (they heard "all lines busy" and went to an advisor) are
    reported apart: nobody was there to answer them."""
    served = [seconds for call, seconds in results if call not in refused]
    answered = [r for r in served if r != float("inf")]
    print(f"  {label}: caller-observed p50={pct(answered, 50):.2f} s  p95={pct(answered, 95):.2f} s  "
          f"max={max(answered, default=float('nan')):.2f} s  unanswered={len(served) - len(answered)}/{len(served)}"
          + (f"  (+{len(results) - len(served)} turns of {len(refused)} calls refused as busy)" if refused else ""))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=24, help="sequential turns in one call")
    parser.add_argument("--levels", default="1,2,4,6")
    parser.add_argument("--turns-per-call", type=int, default=3)
    parser.add_argument("--engine", default="")
    parser.add_argument("--voice", default="")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE setting for the stack")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="hotline-voice-bench-"))
    overrides = {name.lower(): value for name, value in (item.split("=", 1) for item in args.env)}
    if args.engine:
        overrides["tts_engine"] = args.engine
    if args.voice:
        overrides["tts_voice"] = args.voice
    settings = Settings(var_dir=var_dir, rasa_port=free_port(), action_port=free_port(), gateway_port=free_port(),
                        audiosocket_port=free_port(), **overrides)
    voice = f"{settings.tts_engine} {settings.tts_voice or '(default voice)'}"
    seed(SqlRecordsClient(settings.resolved_database_url()))
    clips = load_clips()
    url = settings.gateway_url.replace("http", "ws") + "/twilio/media-stream"
    print(f"voice: {voice}; {len(clips)} clips of 1–4 s speech "
          f"(p50 {pct([c.speech_end for c in clips], 50):.1f} s); settings: {overrides or 'defaults'}")
    with Stack(settings) as stack:
        log = stack.logs_dir / "gateway.log"
        time.sleep(3.0)  # start-up work in the background (model warm-up, TTS cache) settles
        mark = log.stat().st_size
        observed = asyncio.run(run_calls(url, clips, calls=1, turns=args.turns))
        print("\nsequential turns, one call (end of speech → first reply audio, endpointing included):")
        report(f"{len(observed)} turns", observed)
        print_split(splits_since(log, mark))

        print(f"\ncalls started 1 s apart, {args.turns_per_call} turns each:")
        for level in [int(x) for x in args.levels.split(",")]:
            mark = log.stat().st_size
            results = asyncio.run(run_calls(url, clips, calls=level, turns=args.turns_per_call))
            refused = set(re.findall(r"call (\S+): all lines busy", log.read_text()[mark:]))
            report(f"{level} calls", results, refused)
            print_split(splits_since(log, mark))

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
