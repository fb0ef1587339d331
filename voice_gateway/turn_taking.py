"""Whose turn it is on a Mandarin phone line: what the caller said over the bot's speech
(an acknowledgement or noise, which the reply survives, or a real interruption), how long a
caller may stay silent, and when the endpoint waits for a number read in groups.

Pure policy: no audio, no I/O beyond reading the acknowledgement list at start-up. The call
(voice_gateway/transports/call.py) asks it and acts."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, Optional

DEFAULT_BACKCHANNELS = Path(__file__).resolve().parent.parent / "data" / "turn_taking" / "backchannels.zh.txt"
# The form slots whose answer is a number or code a caller reads in groups.
NUMBER_SLOTS = frozenset({"serial_number", "order_number", "phone_tail", "case_number"})
# Punctuation, and U+FFFD: Whisper's byte-level tokens can end inside a character ("好\ufffd" for 好嘞).
_SEPARATORS = re.compile(r"[\s,，、.。!！?？~～…;；:：\-—'\"“”‘’\ufffd]+")


def load_backchannels(path: Path = DEFAULT_BACKCHANNELS) -> FrozenSet[str]:
    words = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(word.lower() for word in words if word)


def _made_of(text: str, words: FrozenSet[str], longest: int) -> bool:
    """`text` is a sequence of `words` (longest match first at each position, with backtracking)."""
    reachable = [True] + [False] * len(text)
    for start in range(len(text)):
        if not reachable[start]:
            continue
        for end in range(min(len(text), start + longest), start, -1):
            if text[start:end] in words:
                reachable[end] = True
    return reachable[len(text)]


@dataclass(frozen=True)
class Overlap:
    """What the caller's speech over the bot's reply was."""
    kind: str  # "backchannel" | "noise" | "unclear" | "interruption"
    text: str = ""

    @property
    def interrupts(self) -> bool:
        return self.kind == "interruption"


@dataclass(frozen=True)
class TurnTaking:
    """Settings of turn-taking for every call of a gateway (README, "Turn-taking")."""
    backchannels: FrozenSet[str] = field(default_factory=load_backchannels)
    # Longer voiced speech than this is never an acknowledgement, whatever was recognised
    # ("嗯" heard in two seconds of speech is a recogniser that missed words).
    backchannel_max_s: float = 1.6
    # What the recogniser is told to expect when it judges speech over the bot (Whisper's initial
    # prompt): on the phone band Whisper base hears a lone "好的" as "放在" or "How"; told that
    # acknowledgements are likely, it writes them (measured on clips of the bot's own voice, which
    # bench/turn_taking.py does not play: README, "Turn-taking").
    judge_prompt: str = "嗯，对，是的，好的，行，明白。"
    # Voiced time up to which speech the prompted recogniser wrote nothing for is taken as noise
    # without asking the plain recognition.
    noise_max_s: float = 0.4
    # A sound this short that the recogniser could make nothing sure of (its mean token
    # log-probability at or below Whisper's own low-confidence bar, -1.0) does not take the turn:
    # a real interruption unheard is said again; an "嗯" answered as a question derails the call.
    unclear_max_s: float = 0.7
    unclear_log_prob: float = -1.0
    # Caller silence after the bot has finished speaking: a reprompt after `reprompt_after_s`,
    # `reprompts` times, then a goodbye after `hangup_after_s` more, and the bot hangs up.
    reprompt_after_s: float = 6.0
    reprompts: int = 2
    hangup_after_s: float = 5.0
    # The endpoint while the bot waits for a number read in groups (pauses between groups).
    number_silence_ms: int = 1500
    # A number recognised less surely than this (Whisper's mean token log-probability) is said
    # back to the caller while the bot looks it up.
    readback_below_log_prob: float = -0.5

    def overlap(self, text: str, voiced_s: float, log_prob: float = 0.0) -> Overlap:
        """Classify what the caller said (recognised `text`, `voiced_s` of speech, the recogniser's
        `log_prob`) while the bot spoke."""
        words = _SEPARATORS.sub("", text or "").lower()
        if not words:
            return Overlap("noise")
        if voiced_s <= self.backchannel_max_s and _made_of(words, self.backchannels,
                                                           max(map(len, self.backchannels), default=1)):
            return Overlap("backchannel", words)
        if voiced_s <= self.unclear_max_s and log_prob <= self.unclear_log_prob:
            return Overlap("unclear", words)
        return Overlap("interruption", words)

    def expects_number(self, requested_slot: Optional[str]) -> bool:
        return requested_slot in NUMBER_SLOTS



def turn_taking_from(settings) -> TurnTaking:
    """The gateway's settings (hotline.core.settings.Settings) as a policy."""
    return TurnTaking(backchannels=load_backchannels(settings.backchannels_file),
                      backchannel_max_s=settings.backchannel_max_s, reprompt_after_s=settings.silence_reprompt_s,
                      reprompts=settings.silence_reprompts, hangup_after_s=settings.silence_hangup_s,
                      number_silence_ms=settings.number_endpoint_silence_ms,
                      readback_below_log_prob=settings.readback_below_log_prob)
