"""One small serializer per telephony wire format, all with one shape: `FrameSerializer`.

A serializer turns what its transport reads (one WebSocket message, one TCP frame) into one of
the shared input events below, and turns what the call says (8 kHz PCM16) into wire frames. It
knows nothing of sockets; a transport knows nothing of the wire format. The generic loop in
`voice_gateway.transports.stream` (`run_media_stream`) reads, parses and drives the `PhoneCall`;
`MediaOutput` there sends or paces the frames, tracks marks and clears on barge-in.

Adding a phone transport:
1. A module here with a class implementing `FrameSerializer` (a fresh instance per connection:
   it may keep per-call state such as a stream id): `parse` one raw message into an input event
   (raise `ProtocolError` for a malformed one, `Unsupported` for a media format it cannot take),
   `audio` to wire frames of 20 ms, and `clear` / `mark` / `hangup` / `error` returning a frame or
   None when the format has no such message.
2. A few lines to accept connections: authorise and limit them (voice_gateway/carriers.py), give
   a `Connection` (`receive` one raw message or None at the end, `send` one frame, `close`; a
   WebSocket is `transports.stream.WebSocketConnection`), and call `run_media_stream(serializer,
   connection, calls, make_output)` where `make_output` builds a `MediaOutput` (paced with
   `frame_seconds=0.02` when the far end plays frames as they arrive, like Asterisk).
tests/test_serializers.py drives a call through a serializer defined in the test this way."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Union


class ProtocolError(ValueError):
    """A message that does not follow the wire format."""


class Unsupported(ProtocolError):
    """A call announced in a media format the gateway cannot take: the call is refused."""


# --- input events: what every wire format's messages come down to -------------------------------
@dataclass(frozen=True)
class CallStarted:
    call_id: str
    caller: Optional[str] = None  # the calling number, where the carrier tells it
    params: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Audio:
    pcm16_8k: bytes


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Mark:
    """The far end has played the audio sent before our mark of this name."""
    name: str


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Ignored:
    """Keepalives, greetings, a second start, keys that are not keys: nothing to do."""
    reason: str = ""


InputEvent = Union[CallStarted, Audio, Dtmf, Mark, Hangup, Ignored]
Frame = Any  # what the transport sends as one message: str for a WebSocket text frame, else bytes


class FrameSerializer(Protocol):
    name: str  # the transport's label: PhoneCall.transport and metrics
    # True when each message stands alone (a WebSocket message): a bad one is counted and skipped.
    # False for a byte stream that cannot find the next frame after a bad one: the call ends,
    # after `error()` is sent.
    skips_bad_messages: bool

    def parse(self, raw: Any) -> InputEvent:
        """One raw message as the transport read it; ProtocolError when it is malformed."""

    def audio(self, pcm16_8k: bytes) -> List[Frame]:
        """Wire frames of 20 ms each, the last one padded with silence."""

    def clear(self) -> Optional[Frame]:
        """The message that makes the far end drop audio it has queued (barge-in), or None."""

    def mark(self, name: str) -> Optional[Frame]:
        """A mark the far end echoes (as `Mark`) once the audio before it has played, or None."""

    def hangup(self) -> Optional[Frame]:
        """The last frame before the connection closes, or None (closing is the hang-up)."""

    def error(self) -> Optional[Frame]:
        """The frame sent before closing on a protocol error (when not `skips_bad_messages`)."""
