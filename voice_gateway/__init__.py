"""FastAPI voice gateway: phone audio (Twilio Media Streams, Asterisk AudioSocket), browser audio
and text chat, all answered by the same Rasa bot through faster-whisper (STT) and Piper (TTS)."""
