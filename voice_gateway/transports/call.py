"""A phone call, whatever the wire: 8 kHz audio in, endpointing, bot turns, 8 kHz speech out,
turn-taking and a DTMF keypad. Transports supply a `PhoneOutput` for their wire format.

Turn-taking (policy in voice_gateway/turn_taking.py): speech over the bot's reply holds the
reply at once (the wire drops its buffered audio) and the call decides from what was said: an
acknowledgement ("嗯", "对") or noise resumes the reply from the interrupted clause; anything
else stops it and is answered as a new turn. A caller who says nothing hears two reprompts,
then a goodbye, and the bot hangs up. While the bot waits for a number, the endpoint allows
pauses between the groups, and "#" ends the turn at once."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Protocol

import numpy as np
import soxr

from hotline.core.privacy import mask_sensitive
from voice_gateway import metrics
from voice_gateway.audio import PHONE_RATE, STT_RATE, pcm16_to_float, float_to_pcm16
from voice_gateway.rasa_client import APOLOGY
from voice_gateway.pipeline import VoicePipeline
from voice_gateway.prompts import (ALL_LINES_BUSY, HEARD_NUMBER, MENU_PROMPT, NO_INPUT_GOODBYE, REPROMPTS, TIME_UP,
                                   TRANSFER_FAILED)
from voice_gateway.recognition import RecognitionJob
from voice_gateway.switchboard import Switchboard
from voice_gateway.transports.playback import Playback
from voice_gateway.turn_taking import Overlap, TurnTaking
from voice_gateway.vad import Endpointer

logger = logging.getLogger(__name__)

# The source describes keypad category choice and keypad serial/number entry. Keys reach Rasa as
# intents, never as phrases for the classifier to guess at again.
KEYPAD_MENU = {"1": "/order_status", "2": "/warranty", "3": "/repair_appointment", "4": "/case_followup",
               "0": "/human_handoff"}
CHANNEL = "phone"  # Rasa's phone channel: phone versions of responses
DTMF_MENU_WAIT = 1.5  # seconds after a lone menu key before it counts as a menu choice
PLAYOUT_LIMIT = 60.0  # seconds to wait for a reply to finish playing before a transfer
SPOKEN_DIGITS = str.maketrans("零〇一幺二两三四五六七八九", "0011223456789")
MAX_DIGITS = 32  # keys buffered before "#"; the longest entry is a 12-character serial number


class PhoneOutput(Protocol):
    on_played: Optional[Callable[[str], None]]  # told each label once the caller has heard its audio

    async def send_audio(self, pcm16_8k: bytes, label: Optional[str] = None) -> None: ...
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
    turn_taking: TurnTaking = field(default_factory=TurnTaking)

    def new_call(self, call_id: str, output: "PhoneOutput", transport: str) -> "PhoneCall":
        return PhoneCall(call_id, self.pipeline, output, transport, self.switchboard,
                         endpoint_silence_ms=self.endpoint_silence_ms, speculate_after_ms=self.speculate_after_ms,
                         media_timeout_s=self.media_timeout_s, max_call_s=self.max_call_s,
                         turn_taking=self.turn_taking)


class PhoneCall:
    def __init__(self, call_id: str, pipeline: VoicePipeline, output: PhoneOutput, transport: str,
                 switchboard: Optional[Switchboard] = None, max_audio_rate: float = 3.0,
                 endpoint_silence_ms: int = 600, speculate_after_ms: int = 256,
                 media_timeout_s: float = 0.8, max_call_s: float = 1800.0,
                 turn_taking: Optional[TurnTaking] = None) -> None:
        self.call_id, self.pipeline, self.output, self.transport = call_id, pipeline, output, transport
        self.switchboard = switchboard
        self.turn_taking = turn_taking or TurnTaking()
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
        # Turn-taking: the reply being spoken, whether the caller's speech over it has been
        # judged an acknowledgement already (its utterance is then not a turn), the judgement
        # under way, and how long the caller has been silent.
        self.playback: Optional[Playback] = None
        output.on_played = self._played
        self._absorbed = False
        self._judging: Optional[asyncio.Task] = None
        self._turns_running = 0
        self._quiet_since: Optional[float] = None
        self._reprompted = 0
        self.expected_slot: Optional[str] = None  # the form slot the bot asked for last
        self._interrupted: Optional[Dict[str, List[str]]] = None  # what the caller heard of a cut reply

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
        self._spawn(self._watch_silence())

    async def on_audio(self, pcm16_8k: bytes) -> None:
        if self.closed or not pcm16_8k or not self._admitted:
            return
        if self._flooded(len(pcm16_8k)):
            return
        self._last_media = time.monotonic()
        samples = self._upsampler.resample_chunk(pcm16_to_float(pcm16_8k))
        for event in self.endpointer.feed(samples):
            if event.kind == "speech_start":
                self._caller_active()
                if self.is_speaking():
                    await self._hold_reply()
            elif event.kind == "pause" and self.pipeline.recognition is not None:
                # Recognise what was said so far while the endpoint silence runs out; over a held
                # reply at once (not in idle time): the caller is waiting for the bot to go on.
                self._drop_speculation("superseded")
                self._speculation = self.pipeline.recognise(event.audio, speculative=True)
                if self._holding():
                    self._judge(self._judgement(event.audio), self._speculation, event.voiced_s)
            elif event.kind == "blip" and self._holding():
                self._absorbed = True  # too short to be words so far; held again if speech goes on
                await self._resume_reply(Overlap("noise"))
            elif event.kind == "resume":
                self._drop_speculation("resumed")
                self._cancel_judging()
                if self._absorbed:  # more than an acknowledgement after all: hold again
                    self._absorbed = False
                    if self.is_speaking():
                        await self._hold_reply()
            elif event.kind == "discarded":
                self._absorbed = False
                if self._holding():
                    await self._resume_reply(Overlap("noise"))
            elif event.kind == "utterance":
                if self._absorbed:  # judged an acknowledgement at its pause: the reply went on
                    self._absorbed = False
                    self._drop_speculation("acknowledgement")
                elif self._holding():
                    self._cancel_judging()
                    self._end_utterance(event.audio, judge=True, voiced_s=event.voiced_s)
                else:
                    self._end_utterance(event.audio)
        if self._holding() and self.endpointer.speech_seconds > self.turn_taking.backchannel_max_s:
            self._stop_reply("long_speech")  # longer than any acknowledgement: the caller has the turn

    def _end_utterance(self, audio: np.ndarray, judge: bool = False, voiced_s: float = 0.0) -> None:
        """Answer the utterance; `judge`: it was said over a held reply, which may go on instead."""
        ended = time.perf_counter()
        job, self._speculation = self._speculation, None
        if job is not None and job.withdraw():  # not started: queue it again as a finished utterance
            job = None
            metrics.SPECULATION.labels("requeued").inc()
        elif job is not None:
            metrics.SPECULATION.labels("used").inc()
        if job is None and self.pipeline.recognition is not None:
            job = self.pipeline.recognise(audio, ended_at=ended)  # in line now, not after this call's turn
        if judge and job is not None:
            self._spawn(self._answered(self._judged_turn(audio, ended, job, voiced_s)))
        else:
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
        self._caller_active()
        if self._menu_timer:
            self._menu_timer.cancel()
            self._menu_timer = None
        if self.is_speaking():
            await self.barge_in()
        if digit == "#":
            entry, self._digits = self._digits, ""
            if entry:
                self._spawn(self._answered(self._text_turn(self.key_choice(entry) or entry)))
            elif self.endpointer.in_speech:  # "#" after a spoken number: the turn ends now
                audio = self.endpointer.flush()
                if audio is not None:
                    self._end_utterance(audio)
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
        self._cancel_judging()
        if self.playback is not None:
            self.playback.stop()
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
        return ((self._speaking is not None and not self._speaking.done()) or self.output.playing()
                or (self.playback is not None and self.playback.held))

    async def barge_in(self) -> None:
        """The caller pressed a key over the bot: stop synthesising and drop queued audio."""
        self._cancel_judging()
        if self.playback is not None:
            self.playback.stop()
        if self._speaking and not self._speaking.done():
            self._speaking.cancel()
        await self.output.clear()
        self.turns.append({"event": "barge_in", "at": time.perf_counter()})

    async def say(self, texts: List[str], turn: Optional[Dict[str, object]] = None) -> None:
        """Speak `texts` clause by clause through a `Playback` (held and resumed by turn-taking)."""
        playback = self.playback = Playback(self.output)
        resampler: Optional[soxr.ResampleStream] = None
        try:
            async for chunk in self.pipeline.speak(texts):
                if resampler is None:
                    resampler = soxr.ResampleStream(chunk.sample_rate, PHONE_RATE, 1, dtype="float32")
                audio = resampler.resample_chunk(pcm16_to_float(chunk.pcm16))
                if turn is not None and "first_audio_at" not in turn:
                    turn["first_audio_at"] = time.perf_counter()
                    turn["first_cached"] = chunk.cached
                await playback.add(chunk.text, float_to_pcm16(audio))
                if playback.stopped:
                    return
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if len(tail):
                    await playback.add("", float_to_pcm16(tail))
            await playback.finish()  # a reply held by the caller's speech waits for the judgement
        finally:
            if turn is not None:
                turn["heard"] = playback.heard_texts()

    def _played(self, label: str) -> None:
        if self.playback is not None:
            self.playback.played(label)

    # --- turn-taking ---------------------------------------------------------------------
    def _holding(self) -> bool:
        return self.playback is not None and self.playback.held

    async def _hold_reply(self) -> None:
        """Speech over the bot: its audio stops now; what it was is judged before the rest goes."""
        playback = self.playback
        if playback is None or playback.stopped:
            await self.barge_in()  # nothing to keep (audio of a reply already cut short): stop it
            return
        if playback.held:
            return
        clause = await playback.hold()
        logger.info("call %s: caller speech over the reply: held at clause %d", self.call_id, clause)
        metrics.OVERLAPS.labels(self.transport, "held").inc()
        self.turns.append({"event": "hold", "at": time.perf_counter(), "clause": clause})

    def _judgement(self, audio: np.ndarray) -> RecognitionJob:
        """Recognition of speech over a held reply, told to expect acknowledgements, at once (not in
        idle time): the caller is waiting for the bot to go on."""
        return self.pipeline.recognise(audio, ended_at=time.perf_counter(), prompt=self.turn_taking.judge_prompt)

    async def _overlap(self, judgement: RecognitionJob, plain: Optional[RecognitionJob], voiced_s: float) -> Overlap:
        """What the speech over the reply was. Told to expect acknowledgements, the recogniser may
        write nothing for words it did not expect: then, past the length of a click, the plain
        recognition (queued for the turn anyway) decides."""
        heard = await judgement.future
        overlap = self.turn_taking.overlap(heard.text, voiced_s, heard.log_prob)
        if overlap.kind == "noise" and plain is not None and voiced_s >= self.turn_taking.noise_max_s:
            # shielded: if this judgement is called off, the turn still needs that recognition
            heard = await asyncio.shield(plain.future)
            overlap = self.turn_taking.overlap(heard.text, voiced_s, heard.log_prob)
        logger.info("call %s: over the reply %r (voiced %.2f s, log-probability %.2f): %s", self.call_id,
                    mask_sensitive(heard.text), voiced_s, heard.log_prob, overlap.kind)
        return overlap

    def _judge(self, judgement: RecognitionJob, plain: Optional[RecognitionJob], voiced_s: float) -> None:
        """Judge the speech so far at its pause: an acknowledgement or noise lets the reply go on."""
        self._cancel_judging()

        async def judge() -> None:
            try:
                overlap = await self._overlap(judgement, plain, voiced_s)
            except asyncio.CancelledError:
                judgement.cancel()
                return  # the caller went on speaking: judged again at the next pause
            if not self._holding():
                return
            if overlap.interrupts:
                self._stop_reply("words", overlap.text)  # the utterance is answered at its end
            else:
                self._absorbed = True
                await self._resume_reply(overlap)

        self._judging = asyncio.ensure_future(judge())

    def _cancel_judging(self) -> None:
        if self._judging is not None and not self._judging.done():
            self._judging.cancel()
        self._judging = None

    async def _resume_reply(self, overlap: Overlap) -> None:
        playback = self.playback
        if playback is None or not playback.held:
            return
        metrics.OVERLAPS.labels(self.transport, overlap.kind).inc()
        logger.info("call %s: %s over the reply: it goes on from clause %d", self.call_id, overlap.kind, playback.sent)
        self.turns.append({"event": overlap.kind, "text": overlap.text, "at": time.perf_counter(),
                           "clause": playback.sent})
        await playback.resume()

    def _stop_reply(self, why: str, text: str = "") -> None:
        """The caller has the turn: the held reply ends; what they heard of it is kept."""
        playback = self.playback
        if playback is None or playback.stopped:
            return
        playback.stop()
        if self._speaking and not self._speaking.done():
            self._speaking.cancel()
        metrics.OVERLAPS.labels(self.transport, "interruption").inc()
        logger.info("call %s: interrupted (%s, %d characters): the reply stops", self.call_id, why, len(text))
        self._interrupted = {"heard": playback.heard_texts(), "unheard": playback.unheard_texts()}
        self.turns.append({"event": "barge_in", "why": why, "text": text, "at": time.perf_counter(),
                           **self._interrupted})

    async def _judged_turn(self, audio: np.ndarray, speech_end: float, job: RecognitionJob, voiced_s: float) -> None:
        """An utterance that ended over a held reply (no judgement at its pause yet)."""
        overlap = await self._overlap(self._judgement(audio), job, voiced_s)
        if not overlap.interrupts:  # an acknowledgement is never a turn of its own
            await self._resume_reply(overlap)
            return
        self._stop_reply("words", overlap.text)
        await self._audio_turn(audio, speech_end, job)

    def _caller_active(self) -> None:
        self._quiet_since, self._reprompted = None, 0

    def _busy(self) -> bool:
        """Something is under way: the caller speaks or keys, a turn runs, or the bot speaks."""
        return (self.is_speaking() or self.endpointer.in_speech or self._turns_running > 0
                or bool(self._digits) or self._menu_timer is not None or self.transferred_to is not None)

    async def _watch_silence(self) -> None:
        """A caller who says nothing after the bot has finished: reprompts, then a goodbye."""
        policy = self.turn_taking
        while not self.closed:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if self._busy():
                self._quiet_since = None
                continue
            if self._quiet_since is None:
                self._quiet_since = now
                continue
            quiet = now - self._quiet_since
            if self._reprompted < policy.reprompts and quiet >= policy.reprompt_after_s:
                text = REPROMPTS[min(self._reprompted, len(REPROMPTS) - 1)]
                self._reprompted += 1
                self._quiet_since = None
                metrics.ERRORS.labels(self.transport, "caller_silent").inc()
                self.turns.append({"event": "reprompt", "at": time.perf_counter(), "texts": [text]})
                self._spawn(self._answered(self._speak_reply([text], None)))
            elif self._reprompted >= policy.reprompts and quiet >= policy.hangup_after_s:
                metrics.ERRORS.labels(self.transport, "silent_hang_up").inc()
                logger.info("call %s: caller silent after %d reprompts: hanging up", self.call_id, self._reprompted)
                self.turns.append({"event": "silent_hang_up", "at": time.perf_counter(), "texts": [NO_INPUT_GOODBYE]})
                await self.end_with(NO_INPUT_GOODBYE)
                return

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
            readback = None
            if job is not None and self.turn_taking.expects_number(self.expected_slot):
                readback = asyncio.ensure_future(self._read_back_if_unsure(job))
            try:
                result = await self.pipeline.audio_turn(self.call_id, audio, self.transport, CHANNEL, job=job,
                                                       metadata=self._metadata())
            finally:
                if readback is not None:
                    await asyncio.gather(readback, return_exceptions=True)
            if result.reply.error is None and result.reply.intent is not None:  # not "say again"
                self._choices = result.reply.buttons
                self._expect(result.reply.requested_slot)
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
                self._expect(reply.requested_slot)
            turn: Dict[str, object] = {"event": "turn", "input": text, "intent": reply.intent,
                                       "texts": reply.texts, "buttons": reply.buttons, "handoff": reply.handoff}
            self.turns.append(turn)
            await self._speak_reply(reply.texts, turn)
            await self._after_reply(reply.handoff)

    def _metadata(self) -> Dict[str, object]:
        """What actions may know of the caller: the number (hashed there) for attempt counts and
        cases; and, once, what the caller heard of a reply they cut short (kept in the tracker)."""
        metadata: Dict[str, object] = {"caller": self.caller} if self.caller else {}
        if self._interrupted is not None:
            metadata["interrupted_reply"], self._interrupted = self._interrupted, None
        return metadata

    def _expect(self, requested_slot: Optional[str]) -> None:
        """The bot asked for `requested_slot`: a number read in groups may pause between them."""
        self.expected_slot = requested_slot
        numbers = self.turn_taking.expects_number(requested_slot)
        self.endpointer.set_silence_ms(self.turn_taking.number_silence_ms if numbers else None)

    async def _read_back_if_unsure(self, job: RecognitionJob) -> None:
        """A number the recogniser was unsure of is said back while the bot looks it up."""
        try:
            transcript = await asyncio.shield(job.future)  # the turn awaits the same recognition
        except asyncio.CancelledError:
            return
        code = "".join(ch for ch in transcript.text.translate(SPOKEN_DIGITS) if ch.isascii() and ch.isalnum()).upper()
        if code and transcript.log_prob < self.turn_taking.readback_below_log_prob:
            self.turns.append({"event": "read_back", "at": time.perf_counter(), "log_prob": transcript.log_prob})
            await self._speak_reply([HEARD_NUMBER.format(code=code)], None)

    async def _answered(self, turn) -> None:
        """Run a turn; if any part of it fails (recognition, Rasa, synthesis, transfer) the caller
        hears an apology and the advisor offer, never silence."""
        self._turns_running += 1
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
        finally:
            self._turns_running -= 1

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
