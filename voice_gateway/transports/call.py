"""A phone call, whatever the wire: 8 kHz audio in, endpointing, bot turns, 8 kHz speech out,
barge-in and a DTMF keypad. Transports supply a `PhoneOutput` for their wire format."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Protocol

import numpy as np
import soxr

from voice_gateway import metrics
from voice_gateway.audio import PHONE_RATE, STT_RATE, pcm16_to_float, float_to_pcm16
from voice_gateway.rasa_client import APOLOGY
from voice_gateway.pipeline import VoicePipeline
from voice_gateway.prompts import ALL_LINES_BUSY, MENU_PROMPT, TIME_UP, TRANSFER_FAILED
from voice_gateway.recognition import RecognitionJob
from voice_gateway.switchboard import Switchboard
from voice_gateway.vad import Endpointer

logger = logging.getLogger(__name__)

# The source describes keypad category choice and keypad serial/number entry. Keys reach Rasa as
# intents, never as phrases for the classifier to guess at again.
KEYPAD_MENU = {"1": "/order_status", "2": "/warranty", "3": "/repair_appointment", "4": "/case_followup",
               "0": "/human_handoff"}
CHANNEL = "phone"  # Rasa's phone channel: phone versions of responses
DTMF_MENU_WAIT = 1.5  # seconds after a lone menu key before it counts as a menu choice
PLAYOUT_LIMIT = 60.0  # seconds to wait for a reply to finish playing before a transfer
MAX_DIGITS = 32  # keys buffered before "#"; the longest entry is a 12-character serial number


class PhoneOutput(Protocol):
    async def send_audio(self, pcm16_8k: bytes) -> None: ...
    async def clear(self) -> None: ...
    def playing(self) -> bool: ...
    async def transfer(self, group: str, target: str) -> None: ...
    async def end(self) -> None: ...


@dataclass
class CallSetup:
    """What every call of a gateway is made with (transports create calls through it)."""
    pipeline: VoicePipeline
    switchboard: Optional[Switchboard] = None
    endpoint_silence_ms: int = 600
    speculate_after_ms: int = 256
    media_timeout_s: float = 0.8
    max_call_s: float = 1800.0

    def new_call(self, call_id: str, output: "PhoneOutput", transport: str) -> "PhoneCall":
        return PhoneCall(call_id, self.pipeline, output, transport, self.switchboard,
                         endpoint_silence_ms=self.endpoint_silence_ms, speculate_after_ms=self.speculate_after_ms,
                         media_timeout_s=self.media_timeout_s, max_call_s=self.max_call_s)


class PhoneCall:
    def __init__(self, call_id: str, pipeline: VoicePipeline, output: PhoneOutput, transport: str,
                 switchboard: Optional[Switchboard] = None, max_audio_rate: float = 3.0,
                 endpoint_silence_ms: int = 600, speculate_after_ms: int = 256,
                 media_timeout_s: float = 0.8, max_call_s: float = 1800.0) -> None:
        self.call_id, self.pipeline, self.output, self.transport = call_id, pipeline, output, transport
        self.switchboard = switchboard
        self.endpointer = Endpointer(silence_ms=endpoint_silence_ms, pause_ms=speculate_after_ms)
        self.media_timeout_s, self.max_call_s = media_timeout_s, max_call_s
        self._speculation: Optional[RecognitionJob] = None
        self._last_media = time.monotonic()
        self._admitted = False
        self.transferred_to: Optional[str] = None
        self.caller: Optional[str] = None  # the calling number, where the carrier tells it
        # Stateful: resampling each 20 ms frame on its own adds an edge artefact every frame.
        self._upsampler = soxr.ResampleStream(PHONE_RATE, STT_RATE, 1, dtype="float32")
        self.turns: List[Dict[str, object]] = []  # what happened, with timings (tests, bench)
        self._speaking: Optional[asyncio.Task] = None
        self._turn_lock = asyncio.Lock()
        self._tasks: set = set()
        self._digits = ""
        self._choices: List[Dict[str, str]] = []  # buttons of the last reply: key N presses the Nth
        self._choices_at_key: List[Dict[str, str]] = []
        self._menu_timer: Optional[asyncio.Task] = None
        self._window_start, self._window_bytes = time.monotonic(), 0
        self._max_bytes_per_s = max_audio_rate * PHONE_RATE * 2
        self.closed = False

    # --- input -------------------------------------------------------------------------
    async def start(self) -> None:
        metrics.ACTIVE_CALLS.labels(self.transport).inc()
        self._admitted = self.switchboard is None or self.switchboard.admit(self.transport, self)
        if not self._admitted:
            logger.info("call %s: all lines busy (%s calls)", self.call_id, self.switchboard.active)
            self._spawn(self._refuse_busy())
            return
        self._spawn(self._answered(self._greet()))
        self._spawn(self._watch_media())
        self._spawn(self._end_at_time_limit())

    async def on_audio(self, pcm16_8k: bytes) -> None:
        if self.closed or not pcm16_8k or not self._admitted:
            return
        if self._flooded(len(pcm16_8k)):
            return
        self._last_media = time.monotonic()
        samples = self._upsampler.resample_chunk(pcm16_to_float(pcm16_8k))
        for event in self.endpointer.feed(samples):
            if event.kind == "speech_start" and self.is_speaking():
                await self.barge_in()
            elif event.kind == "pause" and self.pipeline.recognition is not None:
                # Recognise what was said so far while the endpoint silence runs out.
                self._drop_speculation("superseded")
                self._speculation = self.pipeline.recognise(event.audio, speculative=True)
            elif event.kind == "resume":
                self._drop_speculation("resumed")
            elif event.kind == "utterance":
                self._end_utterance(event.audio)

    def _end_utterance(self, audio: np.ndarray) -> None:
        ended = time.perf_counter()
        job, self._speculation = self._speculation, None
        if job is not None and job.withdraw():  # not started: queue it again as a finished utterance
            job = None
            metrics.SPECULATION.labels("requeued").inc()
        elif job is not None:
            metrics.SPECULATION.labels("used").inc()
        if job is None and self.pipeline.recognition is not None:
            job = self.pipeline.recognise(audio, ended_at=ended)  # in line now, not after this call's turn
        self._spawn(self._answered(self._audio_turn(audio, ended, job)))

    def _drop_speculation(self, outcome: str) -> None:
        if self._speculation is not None:
            self._speculation.cancel()
            self._speculation = None
            metrics.SPECULATION.labels(outcome).inc()

    async def _watch_media(self) -> None:
        """Media that stops mid-utterance (a client sending nothing during silence) must not
        leave the caller waiting: after `media_timeout_s` the utterance ends as if silence came.

        Only time this loop was free to read counts as a gap: after the gateway itself was busy
        (a tick that came late), the frames sent meanwhile are still queued unread, and cutting
        the utterance there would split one question into two turns."""
        tick, quiet, seen, last = 0.1, 0.0, self._last_media, time.monotonic()
        while not self.closed:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self._last_media != seen:
                quiet, seen = 0.0, self._last_media
            else:
                quiet += min(now - last, 2 * tick)
            last = now
            if self.endpointer.in_speech and quiet > self.media_timeout_s:
                quiet = 0.0
                audio = self.endpointer.flush()
                if audio is not None:
                    metrics.ERRORS.labels(self.transport, "media_stalled").inc()
                    self._end_utterance(audio)
                else:
                    self._drop_speculation("stalled")

    async def _end_at_time_limit(self) -> None:
        """No call lasts longer than `max_call_s`: then a short goodbye, and the line is hung up."""
        await asyncio.sleep(self.max_call_s)
        metrics.ERRORS.labels(self.transport, "max_call_length").inc()
        logger.info("call %s: %.0f s limit reached: hanging up", self.call_id, self.max_call_s)
        await self.end_with(TIME_UP)

    async def end_with(self, goodbye: str) -> None:
        """Stop whatever the call is doing, say `goodbye`, and hang up (time limit, shutdown)."""
        for task in self._tasks - {asyncio.current_task()}:  # turns in progress end here
            task.cancel()
        if self._speaking and not self._speaking.done():
            self._speaking.cancel()
        try:
            await self.output.clear()
            await self._speak_reply([goodbye], None)
            await self._wait_for_playout()
        except Exception as error:  # no voice: hang up all the same
            logger.error("call %s: goodbye failed: %r", self.call_id, error)
        await self.output.end()

    async def on_dtmf(self, digit: str) -> None:
        if self.closed or not self._admitted:
            return
        if self._menu_timer:
            self._menu_timer.cancel()
            self._menu_timer = None
        if self.is_speaking():
            await self.barge_in()
        if digit == "#":
            entry, self._digits = self._digits, ""
            if entry:
                self._spawn(self._answered(self._text_turn(self.key_choice(entry) or entry)))
            return
        if digit == "*":
            self._digits = ""
            return
        if not self._digits:  # keys mean what the caller heard when pressing, not a later reply
            self._choices_at_key = list(self._choices)
        if len(self._digits) >= MAX_DIGITS:
            metrics.ERRORS.labels(self.transport, "dtmf_overflow").inc()
            return
        self._digits += digit
        if len(self._digits) == 1 and self.key_choice(digit):
            self._menu_timer = asyncio.ensure_future(self._menu_choice_after_pause())

    def key_choice(self, entry: str) -> Optional[str]:
        """The intent a lone key stands for: a button of the last reply, else the keypad menu."""
        choices = self._choices_at_key
        if entry != "0" and entry.isdigit() and 1 <= int(entry) <= len(choices):
            return choices[int(entry) - 1]["payload"]
        return KEYPAD_MENU.get(entry)

    async def hangup(self) -> None:
        if self.closed:
            return
        self.closed = True
        metrics.ACTIVE_CALLS.labels(self.transport).dec()
        if self._admitted and self.switchboard is not None:
            self.switchboard.release(self)
        self._drop_speculation("hung_up")
        unfinished = self.endpointer.flush()
        if unfinished is not None:  # nobody is left to answer: record that it was cut off
            metrics.ERRORS.labels(self.transport, "hung_up_mid_utterance").inc()
            logger.info("call %s: hung up during an utterance of %.1f s (not answered)",
                        self.call_id, len(unfinished) / STT_RATE)
        for task in list(self._tasks):
            task.cancel()
        if self._menu_timer:
            self._menu_timer.cancel()

    # --- output ------------------------------------------------------------------------
    def is_speaking(self) -> bool:
        return (self._speaking is not None and not self._speaking.done()) or self.output.playing()

    async def barge_in(self) -> None:
        """The caller talks over the bot: stop synthesising and drop queued audio."""
        if self._speaking and not self._speaking.done():
            self._speaking.cancel()
        await self.output.clear()
        self.turns.append({"event": "barge_in", "at": time.perf_counter()})

    async def say(self, texts: List[str], turn: Optional[Dict[str, object]] = None) -> None:
        resampler: Optional[soxr.ResampleStream] = None
        async for chunk in self.pipeline.speak(texts):
            if resampler is None:
                resampler = soxr.ResampleStream(chunk.sample_rate, PHONE_RATE, 1, dtype="float32")
            audio = resampler.resample_chunk(pcm16_to_float(chunk.pcm16))
            if turn is not None and "first_audio_at" not in turn:
                turn["first_audio_at"] = time.perf_counter()
                turn["first_cached"] = chunk.cached
            await self.output.send_audio(float_to_pcm16(audio))
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                await self.output.send_audio(float_to_pcm16(tail))

    # --- turns -------------------------------------------------------------------------
    async def _greet(self) -> None:
        reply = await self.pipeline.text_turn(self.call_id, "你好", self.transport, CHANNEL, self._metadata())
        await self._speak_reply(reply.texts + ([MENU_PROMPT] if not reply.error else []), None)

    async def _refuse_busy(self) -> None:
        await self._speak_reply([ALL_LINES_BUSY], None)
        if not await self._transfer("general"):
            await self._wait_for_playout()
            await self.output.end()  # nothing more will happen on this line: hang up, never hold silence

    async def _audio_turn(self, audio: np.ndarray, speech_end: float, job: Optional[RecognitionJob]) -> None:
        async with self._turn_lock:
            result = await self.pipeline.audio_turn(self.call_id, audio, self.transport, CHANNEL, job=job,
                                                   metadata=self._metadata())
            if result.reply.error is None and result.reply.intent is not None:  # not "say again"
                self._choices = result.reply.buttons
            turn: Dict[str, object] = {"event": "turn", "speech_end": speech_end,
                                       "transcript": result.transcript.text if result.transcript else "",
                                       "intent": result.reply.intent, "confidence": result.reply.confidence,
                                       "texts": result.reply.texts, "buttons": result.reply.buttons,
                                       "handoff": result.reply.handoff, "speculative": job is not None,
                                       **result.timings}
            self.turns.append(turn)
            turn["replied_at"] = time.perf_counter()
            await self._speak_reply(result.reply.texts, turn)
            self._log_timings(turn)
            await self._after_reply(result.reply.handoff)

    def _log_timings(self, turn: Dict[str, object]) -> None:
        """One JSON line per spoken turn: the latency split (read by bench/voice_latency.py)."""
        if "first_audio_at" not in turn:
            return
        split = {"call": self.call_id, "transport": self.transport,
                 "queue": round(turn.get("queue", 0.0), 3), "stt": round(turn.get("stt", 0.0), 3),
                 "stt_engine": round(turn.get("stt_engine", 0.0), 3), "rasa": round(turn.get("rasa", 0.0), 3),
                 "tts_first": round(turn["first_audio_at"] - turn["replied_at"], 3),
                 "total": round(turn["first_audio_at"] - turn["speech_end"], 3),
                 "speculative": turn.get("speculative", False), "cached": turn.get("first_cached", False)}
        logger.info("turn timings %s", json.dumps(split))

    async def _text_turn(self, text: str) -> None:
        async with self._turn_lock:
            reply = await self.pipeline.text_turn(self.call_id, text, self.transport, CHANNEL, self._metadata())
            if reply.error is None:
                self._choices = reply.buttons
            turn: Dict[str, object] = {"event": "turn", "input": text, "intent": reply.intent,
                                       "texts": reply.texts, "buttons": reply.buttons, "handoff": reply.handoff}
            self.turns.append(turn)
            await self._speak_reply(reply.texts, turn)
            await self._after_reply(reply.handoff)

    def _metadata(self) -> Dict[str, str]:
        """What actions may know of the caller: the number (hashed there) for attempt counts and cases."""
        return {"caller": self.caller} if self.caller else {}

    async def _answered(self, turn) -> None:
        """Run a turn; if any part of it fails (recognition, Rasa, synthesis, transfer) the caller
        hears an apology and the advisor offer, never silence."""
        try:
            await turn
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.error("call %s: turn failed: %r", self.call_id, error)
            metrics.ERRORS.labels(self.transport, "turn_failed").inc()
            self.turns.append({"event": "turn", "error": type(error).__name__, "texts": [APOLOGY]})
            try:
                await self._speak_reply([APOLOGY], None)
            except Exception as again:  # the voice itself is broken: nothing more can be said
                logger.error("call %s: apology failed too: %r", self.call_id, again)

    async def _after_reply(self, handoff: Optional[Dict[str, object]]) -> None:
        """A handoff reply has been spoken: move the call to the advisor group it names."""
        if handoff and self.switchboard is not None:
            await self._transfer(str(handoff.get("skill_group") or "general"))

    async def _wait_for_playout(self) -> None:
        deadline = time.monotonic() + PLAYOUT_LIMIT
        while self.output.playing() and time.monotonic() < deadline and not self.closed:
            await asyncio.sleep(0.05)

    async def _transfer(self, group: str) -> bool:
        await self._wait_for_playout()  # let the caller hear the case number first
        if self.closed or self.switchboard is None:
            return False
        target = self.switchboard.target(group)
        # Recorded first: Asterisk asks for the group as soon as the socket ends.
        self.switchboard.record_transfer(self.call_id, group, self.transport)
        try:
            await self.output.transfer(group, target)
        except Exception as error:  # the carrier refused: keep the caller, say so
            logger.error("call %s: transfer to %s failed: %r", self.call_id, group, error)
            metrics.ERRORS.labels(self.transport, "transfer_failed").inc()
            await self._speak_reply([TRANSFER_FAILED], None)
            return False
        self.transferred_to = group
        return True

    async def _speak_reply(self, texts: List[str], turn: Optional[Dict[str, object]]) -> None:
        self._speaking = asyncio.ensure_future(self.say(texts, turn))
        try:
            await self._speaking
        except asyncio.CancelledError:
            if self.closed:
                raise

    async def _menu_choice_after_pause(self) -> None:
        await asyncio.sleep(DTMF_MENU_WAIT)
        entry, self._digits = self._digits, ""
        self._menu_timer = None
        choice = self.key_choice(entry)
        if choice:
            self._spawn(self._answered(self._text_turn(choice)))

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("call %s: turn failed: %r", self.call_id, task.exception())
            metrics.ERRORS.labels(self.transport, "turn_failed").inc()

    def _flooded(self, size: int) -> bool:
        """More than `max_audio_rate`× real time of audio in a second: drop the excess."""
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_bytes = now, 0
        self._window_bytes += size
        if self._window_bytes > self._max_bytes_per_s:
            metrics.ERRORS.labels(self.transport, "audio_flood").inc()
            return True
        return False
