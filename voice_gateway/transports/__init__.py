"""Transports turn audio in into bot turns out: phone lines (Twilio, AudioSocket) and browsers."""
