"""One place for every knob. Values come from the environment (or a `.env` file), with
embedded defaults that run the whole assistant on one machine with SQLite."""
from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Optional

from pydantic import BaseSettings, Field, validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # hotline/core/settings.py → the project
# Rasa and the action server listen here whatever HOST says: only the gateway faces the network.
INTERNAL_HOST = "127.0.0.1"


class Settings(BaseSettings):
    project_root: Path = PROJECT_ROOT
    var_dir: Path = PROJECT_ROOT / "var"
    models_dir: Path = PROJECT_ROOT / "models"

    # The gateway's (and AudioSocket's) address; 0.0.0.0 exposes them. `hotline run` keeps Rasa and
    # the action server on loopback whatever this says; `hotline serve ROLE` (one role per
    # container) binds that role here.
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    action_port: int = 5055
    # Where the gateway reaches Rasa and Rasa reaches the action server: loopback on these ports
    # unless set (a load balancer or a Kubernetes Service in a cluster).
    rasa_url: str = ""
    action_server_url: str = ""
    # SIGTERM on a gateway: readiness fails and no new call is taken, live calls get this long to
    # finish, then hear a goodbye; then the process exits.
    drain_timeout_s: float = 30.0
    # …and for at least this long after SIGTERM it still serves everything else, so that a load
    # balancer sees the failed readiness probe before the process goes (HAProxy checks every 1-2 s).
    drain_notice_s: float = 5.0
    # Rasa's HTTP API (/model/parse, /conversations, /model/train) is protected by this token.
    # Empty means: generate one on first run and keep it in var/rasa_token.
    rasa_token: str = ""
    # Rasa calls the action server with this bearer token (empty: var/action_token).
    action_token: str = ""
    # Each action call answers within this many seconds or fails (Rasa's own limit is 5 minutes).
    action_timeout_s: float = 1.5
    # A Rasa turn (from the gateway) fails after this long and the caller hears the apology: a
    # turn may run several actions, so this is what bounds the silence.
    rasa_timeout_s: float = 2.5

    # Records (warranty, orders, support cases). PostgreSQL: postgresql://user@host:5432/db
    database_url: str = ""
    # Rasa conversations (SQL tracker store). Same URL forms as database_url.
    tracker_store_url: str = ""
    # Redis lock store for several Rasa instances, e.g. redis://127.0.0.1:6379/0
    lock_store_url: Optional[str] = None

    model_name: str = "hotline"
    # Speech-robust NLU: train on recogniser-like variants of the examples too (hotline/trainer/augment.py).
    nlu_augment: bool = True
    nlu_augment_seed: int = 13

    # Voice gateway
    gateway_port: int = 8000
    audiosocket_port: int = 9092  # Asterisk AudioSocket TCP; 0 picks a free port
    public_url: Optional[str] = None  # what Twilio reaches, e.g. https://bot.example.com (TwiML)
    stt_model_dir: Optional[Path] = None  # any CTranslate2 Whisper directory; default models/whisper-base
    # Chosen on data/eval/stt_dev (README, "Speech recognition"): beam 5 with temperature fallback
    # and no hotwords (hotwords tripled the empty transcripts and did not lower the error rate).
    stt_beam_size: int = 5
    stt_temperature_fallback: bool = True
    stt_hotwords: bool = False
    stt_threads: int = 2  # CTranslate2 threads per recognition worker
    stt_workers: int = 1  # one queue for every call: workers × threads ≤ cores (README, "Phone latency")
    # Whisper's encoder window for utterances that fit (faster-whisper `chunk_length`): 30 is
    # Whisper's own; shorter is faster on short phone questions (measured in the README).
    stt_window_s: int = 10
    # Text-to-speech: "kokoro" (Kokoro-82M speaking Mandarin, Apache-2.0, installed from PyPI) or
    # "piper" (any Piper .onnx voice). TTS_VOICE: a Kokoro voice name (empty: the measured best,
    # jm_kumo), or a Piper voice name in voices_dir / a path to an .onnx file.
    tts_engine: str = "kokoro"
    tts_voice: str = ""
    tts_speed: float = 1.0  # Kokoro speaking rate (1.0 = the voice's own)
    tts_workers: int = 1  # synthesis pool: clauses synthesised at once, first clauses first
    tts_threads: int = 2  # ONNX threads per synthesis
    tts_cache: bool = True  # render fixed replies once per voice into models/tts-cache (False: all live)
    # Endpointing: the reply starts after this much silence; recognition starts speculatively
    # after `speculate_after_ms` and its result is used if the caller has not spoken again.
    endpoint_silence_ms: int = 600
    speculate_after_ms: int = 256
    # A call whose media stops arriving mid-utterance (a client that sends nothing during
    # silence) ends the utterance after this long.
    media_timeout_s: float = 0.8
    # Turn-taking on calls (README, "Turn-taking"): what the caller says over the bot is judged
    # before the reply stops; data/turn_taking/backchannels.zh.txt lists the acknowledgements
    # that let it go on. A silent caller hears a reprompt after `silence_reprompt_s`,
    # `silence_reprompts` times, then a goodbye after `silence_hangup_s` more.
    backchannels_file: Path = PROJECT_ROOT / "data" / "turn_taking" / "backchannels.zh.txt"
    backchannel_max_s: float = 1.6
    silence_reprompt_s: float = 6.0
    silence_reprompts: int = 2
    silence_hangup_s: float = 5.0
    number_endpoint_silence_ms: int = 1500  # while the bot waits for a serial, order, case or phone number
    readback_below_log_prob: float = -0.5
    max_calls: int = 4  # simultaneous phone calls per gateway; the next caller hears "all lines busy"
    max_call_s: float = 1800.0  # a phone call (Twilio or AudioSocket) is ended with a goodbye after this long
    # Transfer to a human skill group (orders, repairs, account, general). On Twilio the gateway
    # redirects the live call with Twilio's REST API to TwiML for the group's target: "queue:NAME"
    # (<Enqueue>) or a number/SIP URI (<Dial>). On AudioSocket, Asterisk reads the group from
    # GET /v1/calls/{uuid}/transfer after the socket closes (README dialplan).
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""  # with PUBLIC_URL, also checks X-Twilio-Signature (else /twilio/* is loopback-only)
    twilio_api_base: Optional[str] = None  # only for a local stand-in of api.twilio.com in tests
    transfer_orders: str = "queue:orders"
    transfer_repairs: str = "queue:repairs"
    transfer_account: str = "queue:account"
    transfer_general: str = "queue:general"
    voices_dir: Path = PROJECT_ROOT / "models" / "voices"
    load_speech: bool = True  # False: text-only gateway (no recogniser, no voice)
    max_upload_bytes: int = 10 * 1024 * 1024
    max_audio_seconds: float = 30.0
    # Trainer page (/trainer): empty means generate one into var/trainer_token on first use.
    trainer_token: str = ""
    # A retrained model replaces the running one only if its accuracy on the evaluation set is at
    # least the current model's minus this tolerance.
    retrain_tolerance: float = 0.02
    audiosocket_read_timeout: float = 10.0  # seconds a started frame may take to arrive
    audiosocket_allowed_peers: str = "127.0.0.0/8,::1"  # comma-separated IPs/CIDRs that may connect (Asterisk)
    audiosocket_idle_s: float = 10.0  # a call that sends no frame for this long is hung up
    # Per-client request limits (the `limits` library's syntax); storage "memory://" or a
    # redis://… URL shared by several gateways.
    rate_limit_chat: str = "30/minute;300/hour"
    rate_limit_voice: str = "10/minute;100/hour"
    rate_limit_storage: str = "memory://"
    max_request_bytes: int = 11 * 1024 * 1024  # any request body; uploads also obey max_upload_bytes
    ws_max_bytes: int = 128 * 1024  # one WebSocket message (a Twilio media frame is ~ 0.3 KiB)
    audio_decode_timeout_s: float = 10.0
    # Sites that may embed the chat widget (`<script src=".../widget.js">`), comma-separated
    # origins, e.g. https://support.example.com. The gateway's own pages are always allowed.
    allowed_origins: str = ""
    # Behind a reverse proxy: the addresses whose X-Forwarded-For is believed (uvicorn).
    forwarded_allow_ips: str = "127.0.0.1"
    # The launcher restarts a crashed server with back-off, and gives up after this many
    # restarts within ten minutes.
    max_restarts: int = 5
    server_start_timeout: float = Field(180.0, description="seconds to wait for servers")

    class Config:
        env_file = ".env"
        case_sensitive = False

    def transfer_target(self, group: str) -> str:
        return getattr(self, f"transfer_{group}", "") or self.transfer_general

    @property
    def tts_cache_dir(self) -> Path:
        return self.models_dir / "tts-cache"

    @property
    def model_path(self) -> Path:
        return self.models_dir / f"{self.model_name}.tar.gz"

    @property
    def recognition_errors_path(self) -> Path:
        """Learned from Whisper on data/eval/stt_dev (hotline/trainer/errors.py)."""
        return self.project_root / "data" / "recognition_errors.json"

    @property
    def whisper_dir(self) -> Path:
        return self.stt_model_dir or self.models_dir / "whisper-base"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @validator("rasa_url", always=True)
    def _loopback_rasa(cls, value: str, values: dict) -> str:
        return (value or f"http://{INTERNAL_HOST}:{values.get('rasa_port', 5005)}").rstrip("/")

    @validator("action_server_url", always=True)
    def _loopback_actions(cls, value: str, values: dict) -> str:
        return (value or f"http://{INTERNAL_HOST}:{values.get('action_port', 5055)}").rstrip("/")

    @property
    def action_url(self) -> str:
        return self.action_server_url

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'records.db'}"

    def resolved_tracker_store_url(self) -> str:
        return self.tracker_store_url or f"sqlite:///{self.var_dir / 'tracker.db'}"

    def resolved_trainer_token(self) -> str:
        return self.trainer_token or self._token_file("trainer_token")

    def resolved_rasa_token(self) -> str:
        return self.rasa_token or self._token_file("rasa_token")

    def resolved_action_token(self) -> str:
        return self.action_token or self._token_file("action_token")

    def _token_file(self, name: str) -> str:
        """The secret in var/NAME, made on first use. It is written to a temporary file created
        with mode 0600 (O_EXCL: never an existing file or link) and then linked into place, so
        the token file is never readable by others nor seen half-written; of several processes
        starting at once, one link wins and the others read its token."""
        import os

        token_file = self.var_dir / name
        for _ in range(10):
            try:
                token = token_file.read_text().strip()
            except FileNotFoundError:
                token = None
            if token:
                if token_file.stat().st_mode & 0o077:  # written by an older version, or by hand
                    token_file.chmod(0o600)
                return token
            self.var_dir.mkdir(parents=True, exist_ok=True)
            temporary = self.var_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(24))
                    out.flush()
                    os.fsync(out.fileno())
                if token is None:
                    try:
                        os.link(temporary, token_file)
                    except FileExistsError:
                        pass  # another process was first: its token is read on the next pass
                else:  # an empty file (a crash between creating and writing): replace it
                    os.replace(temporary, token_file)
            finally:
                temporary.unlink(missing_ok=True)
        raise RuntimeError(f"could not create {token_file}")


@lru_cache()
def get_settings() -> Settings:
    return Settings()
