"""One small serializer per telephony wire format."""


class ProtocolError(ValueError):
    """A message that does not follow the wire format."""
