"""Turn-taking benchmark (not a test): prints numbers.

The whole stack as `hotline run` starts it, with the default Mandarin voice; simulated phone
lines on both transports (bench/callers.py: Twilio Media Streams over WebSocket, Asterisk
AudioSocket over TCP, 20 ms frames in real time). The clips are tests/data/turns (manifest.tsv
says what each is, where it comes from and its licence): acknowledgements and noises played
over the bot's greeting, which must not end it; real interruptions, which must stop it and be
answered; 12-character serial numbers read in three groups 0.8 s apart, which must be one turn
with the right value; and a caller who says nothing.

Per clip, one call: the clip starts 1.5 s into the greeting's audio (the greeting and menu are
≈ 12 s of speech). Measured as the caller hears it:
- stop: from the clip's first voiced frame to when the bot's audio stops (Twilio: its "clear";
  AudioSocket: the last frame before a gap);
- resume: from the clip's last voiced frame to the bot's next audio;
- an acknowledgement "ends the reply" if the bot's audio does not come back within 3 s or Rasa
  gets a new user turn; an interruption is "answered" if Rasa gets it as a user turn and the bot
  speaks after it.

Usage: .venv/bin/python bench/turn_taking.py [--transports twilio,audiosocket] [--only ack,noise,...]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from actions.records.client import SqlRecordsClient  # noqa: E402
from actions.records.seed import seed  # noqa: E402
from bench.callers import AudioSocketLine, PhoneLine, TwilioLine  # noqa: E402
from hotline.cluster import free_port  # noqa: E402
from hotline.core.settings import Settings  # noqa: E402
from hotline.launcher import Stack  # noqa: E402
from voice_gateway.audio import decode, float_to_pcm16, phone_band, resample  # noqa: E402
from voice_gateway.vad import FRAME, speech_probabilities  # noqa: E402

CLIPS = ROOT / "tests" / "data" / "turns"
INTO_GREETING_S = 1.5


class Clip:
    def __init__(self, row: Dict[str, str]) -> None:
        self.name, self.kind, self.said = row["file"], row["kind"], row["said"]
        samples = decode((CLIPS / self.name).read_bytes()).samples
        padded = np.concatenate([samples, np.zeros(-len(samples) % FRAME, np.float32)])
        voiced = np.nonzero(speech_probabilities(padded, np.zeros(64, np.float32)) >= 0.5)[0]
        self.voice_start = voiced[0] * FRAME / 16000 if len(voiced) else 0.0
        self.voice_end = (voiced[-1] + 1) * FRAME / 16000 if len(voiced) else len(samples) / 16000
        self.pcm = float_to_pcm16(resample(phone_band(samples), 16000, 8000))


def clips(kinds: Optional[List[str]] = None) -> List[Clip]:
    with (CLIPS / "manifest.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [Clip(row) for row in rows if not kinds or row["kind"] in kinds]


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rasa = f"http://127.0.0.1:{settings.rasa_port}"
        self.token = settings.resolved_rasa_token()

    def line(self, transport: str) -> PhoneLine:
        if transport == "twilio":
            return TwilioLine(self.settings.gateway_url.replace("http", "ws") + "/twilio/media-stream")
        return AudioSocketLine("127.0.0.1", self.settings.audiosocket_port)

    def tracker(self, sender: str) -> dict:
        return requests.get(f"{self.rasa}/conversations/{sender}/tracker", params={"token": self.token},
                            timeout=10).json()

    def user_texts(self, sender: str) -> List[str]:
        return [e.get("text") or "" for e in self.tracker(sender).get("events", []) if e.get("event") == "user"]

    async def first_audio(self, line: PhoneLine, after: float = 0.0, timeout: float = 30.0) -> Optional[float]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            moment = line.next_audio_after(after)
            if moment is not None:
                return moment
            await asyncio.sleep(0.02)
        return None

    async def over_greeting(self, transport: str, clip: Clip) -> dict:
        """Play `clip` 1.5 s into the greeting; what happened to the bot's speech."""
        async with self.line(transport) as line:
            started = await self.first_audio(line, 0.0)
            if started is None:
                return {"error": "no greeting"}
            await asyncio.sleep(max(0.0, started + INTO_GREETING_S - time.perf_counter()))
            first = await line.said(clip.pcm)
            onset, end = first + clip.voice_start, first + clip.voice_end
            await asyncio.sleep(4.0 if clip.kind == "interruption" else 3.0)
            stopped = line.stopped_after(onset - 0.05)
            resumed = line.next_audio_after(stopped + 0.05) if stopped is not None else None
            if clip.kind == "interruption":  # the answer may take longer than a resume
                for _ in range(100):
                    if resumed is not None:
                        break
                    await asyncio.sleep(0.1)
                    resumed = line.next_audio_after(stopped + 0.05) if stopped is not None else None
            texts = await asyncio.to_thread(self.user_texts, line.call_id)
        audio_after = any(line.playing_at(end + 0.5 + k * 0.1) for k in range(25))  # within 3 s of the sound
        return {"stop": stopped - onset if stopped is not None and stopped < end + 2 else None,
                "audio_after": audio_after,
                "resume": resumed - end if resumed is not None else None,
                "playing_at_end": stopped is None or stopped > end, "new_turns": texts[1:]}

    async def serial(self, transport: str, clip: Clip) -> dict:
        """Key 2 (warranty), wait for the question to be spoken, read the serial in groups."""
        async with self.line(transport) as line:
            await self.first_audio(line, 0.0)
            await line.key("2")
            for _ in range(300):  # the form's question has been asked and heard to the end
                await asyncio.sleep(0.1)
                events = await asyncio.to_thread(self.tracker, line.call_id)
                if (events.get("slots") or {}).get("requested_slot") == "serial_number" \
                        and time.perf_counter() - line.silent_since() > 1.0:
                    break
            await line.said(clip.pcm)
            for _ in range(200):
                await asyncio.sleep(0.1)
                state = await asyncio.to_thread(self.tracker, line.call_id)
                users = [e.get("text") for e in state["events"] if e.get("event") == "user"]
                if len(users) > 2 and time.perf_counter() - line.silent_since() > 2.5:
                    break
        after = users[2:] if len(users) > 2 else []
        value = (state.get("slots") or {}).get("serial_number")
        return {"turns": len(after), "texts": after, "value": value, "right": value == clip.said}

    async def silent(self, transport: str) -> dict:
        async with self.line(transport) as line:
            connected = time.perf_counter()
            await self.first_audio(line, 0.0)
            while line.closed_at is None and time.perf_counter() - connected < 90:
                await asyncio.sleep(0.2)
            spans = line.heard
            gaps = [(spans[i][1], spans[i + 1][0]) for i in range(len(spans) - 1) if spans[i + 1][0] - spans[i][1] > 2.0]
            bot_hung_up = line.closed_at is not None and time.perf_counter() - connected < 90
            return {"reprompt_after": gaps[0][1] - gaps[0][0] if gaps else None,
                    "gaps": [round(b - a, 2) for a, b in gaps],
                    "hung_up_at": (line.closed_at - connected) if bot_hung_up else None,
                    "hung_up_after_greeting": (line.closed_at - gaps[0][0]) if bot_hung_up and gaps else None}


def report(transport: str, results: Dict[str, list], serials: list, silent: dict) -> None:
    print(f"\n== {transport} ==")
    acks = results.get("acknowledgement", [])
    noise = results.get("noise", [])
    for label, rows in (("acknowledgements", acks), ("noises", noise)):
        if not rows:
            continue
        ended = [r for r in rows if not r["audio_after"] or r["new_turns"]]
        held = [r for r in rows if r.get("stop") is not None and r not in ended]
        resumes = [r["resume"] for r in held if r.get("resume") is not None]
        print(f"{label}: {len(ended)} of {len(rows)} ended the reply; paused and resumed {len(held)}; "
              f"resume after the sound p50 {pct(resumes, 50):.2f} s p95 {pct(resumes, 95):.2f} s max "
              f"{max(resumes, default=float('nan')):.2f} s")
        for r in ended:
            print(f"   ended: {r['clip']} ({r['said']}) resume={r.get('resume')} new turns={r['new_turns']}")
    rows = results.get("interruption", [])
    if rows:
        stops = [r["stop"] for r in rows if r.get("stop") is not None]
        answered = [r for r in rows if r["new_turns"] and r.get("resume") is not None]
        print(f"interruptions: audio stopped in {len(stops)} of {len(rows)}: after speech start p50 "
              f"{pct(stops, 50) * 1000:.0f} ms p95 {pct(stops, 95) * 1000:.0f} ms; answered as a new turn "
              f"{len(answered)} of {len(rows)}")
        for r in rows:
            if r not in answered:
                print(f"   not answered: {r['clip']} ({r['said']}) {r}")
    if serials:
        right = [s for s in serials if s["turns"] == 1 and s["right"]]
        print(f"serials read in three groups 0.8 s apart: one turn with the right value {len(right)} of "
              f"{len(serials)}; one turn {sum(s['turns'] == 1 for s in serials)} of {len(serials)}")
        for s in serials:
            if s not in right:
                print(f"   {s['clip']}: turns={s['turns']} heard={s['texts']} slot={s['value']} want={s['said']}")
    if silent:
        print(f"silent caller: first reprompt {silent['reprompt_after']} s after the bot stopped speaking; "
              f"silences {silent['gaps']}; the bot hung up {silent['hung_up_at']} s into the call "
              f"({silent['hung_up_after_greeting']} s after the greeting ended)")


async def run(bench: Bench, transport: str, kinds: List[str], names: str = "") -> None:
    silent_task = asyncio.ensure_future(bench.silent(transport)) if "silence" in kinds else None
    results: Dict[str, list] = {}
    over_greeting = [k for k in kinds if k in ("acknowledgement", "noise", "interruption")]
    for clip in clips(over_greeting) if over_greeting else []:
        if names and clip.name not in names.split(","):
            continue
        outcome = await bench.over_greeting(transport, clip)
        results.setdefault(clip.kind, []).append({**outcome, "clip": clip.name, "said": clip.said})
    serials = []
    if "serial_in_groups" in kinds:
        for clip in clips(["serial_in_groups"]):
            if names and clip.name not in names.split(","):
                continue
            serials.append({**await bench.serial(transport, clip), "clip": clip.name, "said": clip.said})
    silent = await silent_task if silent_task is not None else {}
    report(transport, results, serials, silent)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transports", default="twilio,audiosocket")
    parser.add_argument("--only", default="acknowledgement,noise,interruption,serial_in_groups,silence")
    parser.add_argument("--clips-dir", default="", help="another clip set (bench/make_turn_clips.py --dev)")
    parser.add_argument("--clips", default="", help="comma-separated clip files (default: all of the kinds)")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE setting for the stack")
    args = parser.parse_args()
    if args.clips_dir:
        global CLIPS
        CLIPS = Path(args.clips_dir).resolve()
    overrides = {name.lower(): value for name, value in (item.split("=", 1) for item in args.env)}
    settings = Settings(var_dir=Path(tempfile.mkdtemp(prefix="hotline-turns-bench-")), rasa_port=free_port(),
                        action_port=free_port(), gateway_port=free_port(), audiosocket_port=free_port(), **overrides)
    seed(SqlRecordsClient(settings.resolved_database_url()))
    print(f"voice: {settings.tts_engine} {settings.tts_voice or '(default)'}; clips: {CLIPS}; "
          f"settings: {overrides or 'defaults'}")
    with Stack(settings):
        time.sleep(3.0)
        for transport in args.transports.split(","):
            asyncio.run(run(Bench(settings), transport, args.only.split(","), args.clips))
    return 0


if __name__ == "__main__":
    sys.exit(main())
