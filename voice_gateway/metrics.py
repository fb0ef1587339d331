"""Prometheus metrics (GET /metrics)."""
from prometheus_client import Counter, Gauge, Histogram

BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

TURNS = Counter("hotline_turns_total", "Bot turns handled", ["transport", "kind"])
ERRORS = Counter("hotline_errors_total", "Inputs refused or failures answered politely", ["transport", "reason"])
STT_SECONDS = Histogram("hotline_stt_seconds", "Speech-to-text time per utterance", buckets=BUCKETS)
RASA_TURN_SECONDS = Histogram("hotline_rasa_turn_seconds", "Rasa turn time (NLU + dialogue + actions)", buckets=BUCKETS)
TTS_FIRST_SECONDS = Histogram("hotline_tts_first_chunk_seconds", "Time to the first synthesised clause",
                              buckets=BUCKETS)
ACTIVE_CALLS = Gauge("hotline_active_calls", "Phone calls and voice streams in progress", ["transport"])
STT_QUEUE_SECONDS = Histogram("hotline_stt_queue_wait_seconds", "Time an utterance waited for a recognition worker",
                              buckets=BUCKETS)
STT_QUEUE_DEPTH = Gauge("hotline_stt_queue_depth", "Utterances waiting for a recognition worker")
STT_DROPPED = Counter("hotline_stt_dropped_total", "Recognitions dropped unstarted (speech resumed, caller gone)")
SPECULATION = Counter("hotline_stt_speculation_total", "Speculative recognitions by outcome", ["outcome"])
TTS_CACHE = Counter("hotline_tts_cache_total", "Synthesised clauses by source", ["source"])
CALLS_REFUSED = Counter("hotline_calls_refused_total", "Calls answered with 'all lines busy'", ["transport"])
TRANSFERS = Counter("hotline_transfers_total", "Calls transferred to a skill group", ["transport", "group"])
OVERLAPS = Counter("hotline_overlaps_total", "Caller speech over the bot: replies held, then acknowledgements and "
                   "noise (the reply went on) or interruptions (it stopped)", ["transport", "kind"])
