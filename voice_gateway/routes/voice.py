import base64
import uuid
from typing import Optional
from urllib.parse import quote

import asyncio

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile, WebSocket
from fastapi.responses import JSONResponse, Response

from voice_gateway import metrics
from voice_gateway.audio import AudioError, decode, wav_bytes
from voice_gateway.deps import PipelineDep, SettingsDep, rate_limit
from voice_gateway.transports.browser import serve_stream

router = APIRouter(prefix="/v1/voice", tags=["voice"])


@router.post("/turn", responses={200: {"content": {"audio/wav": {}}}, 413: {}, 422: {}, 429: {}},
             dependencies=[Depends(rate_limit("voice"))])
async def voice_turn(request: Request, pipeline: PipelineDep, settings: SettingsDep,
                     audio: UploadFile = File(..., description="WAV, MP3, OGG, WebM … any PyAV format"),
                     session_id: Optional[str] = Form(None, max_length=128)):
    """One spoken turn: audio in → transcript, intent, reply texts and reply audio (WAV)."""
    data = await audio.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        metrics.ERRORS.labels("http", "too_large").inc()
        raise HTTPException(413, f"audio larger than {settings.max_upload_bytes} bytes")
    if pipeline.stt is None:
        raise HTTPException(503, "speech recognition is not loaded (text-only gateway)")
    try:  # off the event loop, bounded: a hostile file must not stall every call on this gateway
        decoded = await asyncio.wait_for(asyncio.to_thread(decode, data, settings.max_audio_seconds),
                                         settings.audio_decode_timeout_s)
    except asyncio.TimeoutError:
        metrics.ERRORS.labels("http", "decode_timeout").inc()
        raise HTTPException(422, "cannot use this audio: decoding took too long") from None
    except AudioError as error:
        metrics.ERRORS.labels("http", "bad_audio").inc()
        raise HTTPException(422, f"cannot use this audio: {error}") from None
    session_id = session_id or f"voice-{uuid.uuid4().hex[:12]}"
    result = await pipeline.audio_turn(session_id, decoded.samples, "http")
    pcm, rate = b"", None
    async for chunk in pipeline.speak(result.reply.texts):
        pcm += chunk.pcm16
        rate = chunk.sample_rate
    reply_wav = wav_bytes(pcm, rate) if rate else None
    transcript = result.transcript.text if result.transcript else ""
    if "audio/wav" in request.headers.get("accept", ""):
        if reply_wav is None:
            raise HTTPException(503, "no text-to-speech voice is loaded; ask for JSON instead")
        return Response(reply_wav, media_type="audio/wav", headers={
            "X-Session-Id": session_id, "X-Transcript": quote(transcript), "X-Intent": result.reply.intent or ""})
    return JSONResponse({
        "session_id": session_id, "transcript": transcript, "intent": result.reply.intent,
        "confidence": result.reply.confidence, "replies": result.reply.texts,
        "handoff": result.reply.handoff, "buttons": result.reply.buttons, "timings": result.timings,
        "audio_wav_base64": base64.b64encode(reply_wav).decode() if reply_wav else None,
    })


@router.websocket("/stream")
async def voice_stream(websocket: WebSocket) -> None:
    await serve_stream(websocket, websocket.app.state.engines.pipeline)
