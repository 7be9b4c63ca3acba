"""The speech endpoints: ``GET /infer``, ``POST /v1/audio/speech`` (OpenAI-compatible),
``POST /synthesize`` (optionally streamed), ``GET /voices``, ``GET /health``, ``GET /metrics``.

Routes only translate HTTP to calls: synthesis is the Synthesizer's, voices the registry's,
keys the store's. Every synthesis runs on the bounded pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
import soxr
from fastapi import APIRouter, Depends, Query, Request
from redis import RedisError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from moksori.server.auth import Principal, authenticate, rate_limited
from moksori.server.cache import AudioCache, CachedAudio
from moksori.server.encode import (
    FORMATS,
    OPENAI_PCM,
    STREAM_FORMATS,
    AudioFormat,
    audio_format,
    encode,
    pcm16,
    streaming_wav_header,
)
from moksori.server.errors import ApiError
from moksori.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from moksori.server.state import ServerState, server_state
from moksori.server.style import (
    COMPONENT_HELP,
    MAX_REFERENCE_TEXT,
    MAX_SIGMA,
    MAX_STYLE_COMPONENT,
    MAX_STYLE_SEGMENTS,
    SEGMENTS_HELP,
    SIGMA_HELP,
    STRENGTH_HELP,
    STYLE_REF_HELP,
    STYLE_REF_TEXT_HELP,
    STYLE_REF_WAV_HELP,
    acoustic_controls,
    resolve_style,
)
from moksori.server.voices import UnknownVoiceError, VoiceInfo
from moksori.synthesis import VoiceError
from moksori.synthesis.synthesizer import BrokenVoiceOutput, UnsupportedControl
from moksori.synthesis.ssml import stream_ssml, synthesize_ssml
from moksori.synthesis.synthesizer import MAX_SPEED, MIN_SPEED, AlignmentFailure, SynthesisStopped
from moksori.text import UnreadableTextError
from moksori.text.ssml import SsmlDocument, SsmlError, parse_ssml

log = logging.getLogger(__name__)
router = APIRouter()

State = Annotated[ServerState, Depends(server_state)]
Caller = Annotated[Principal, Depends(authenticate)]
LimitedCaller = Annotated[Principal, Depends(rate_limited)]

# The voices OpenAI clients know; asked for one the server does not have, it uses its default.
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse"}
)
# OpenAI's own cap on ``input``; /v1/audio/speech applies it (or max_text_chars, if lower).
OPENAI_MAX_INPUT_CHARS = 4096
# The vocoder's controls a request may set (WaveGlow: sampling temperature, denoiser strength;
# other vocoders ignore them); None leaves the vocoder's defaults (0.666 and 0.01 for WaveGlow).
MAX_VOCODER_SIGMA = 2.0
MAX_DENOISE = 1.0
VOCODER_SIGMA_HELP = f"the vocoder's sampling temperature, 0..{MAX_VOCODER_SIGMA} (WaveGlow; default 0.666)"
DENOISE_HELP = f"denoiser strength, 0 (off)..{MAX_DENOISE} (WaveGlow; default 0.01)"
VOCODER_VOICE_HELP = ("speak through another voice's vocoder (name or id; its mel parameters must match), e.g. "
                      "the shipped voice's for a voice without a trained vocoder (Griffin-Lim)")
InputFormat = Literal["text", "ssml"]
StreamFormat = Literal["audio", "sse"]
STREAM_FORMAT_HELP = ("audio (default): the whole file; sse: server-sent events as audio is made, speech.audio.delta "
                      "(base64 audio of response_format wav or pcm) then speech.audio.done, whose 'moksori' field "
                      "holds the alignment outcome")
INPUT_FORMAT_HELP = ("text, or ssml: <speak> with <break time>, <sub alias>, <say-as interpret-as>, <prosody rate>, "
                     "<p>, <s> (malformed SSML: 400 invalid_ssml naming the line and column)")
AUDIO_RESPONSE = {200: {"content": {fmt.media_type: {} for fmt in FORMATS.values()}}}


class ModelControls(BaseModel):
    """The vocoder's and the acoustic model's controls, shared by the POST bodies."""

    vocoder_sigma: float | None = Field(None, ge=0.0, le=MAX_VOCODER_SIGMA, description=VOCODER_SIGMA_HELP)
    vocoder_voice: str | None = Field(None, max_length=200, description=VOCODER_VOICE_HELP)
    denoise: float | None = Field(None, ge=0.0, le=MAX_DENOISE, description=DENOISE_HELP)
    sigma: float | None = Field(None, ge=0.0, le=MAX_SIGMA, description=SIGMA_HELP)
    style_ref: str | None = Field(None, max_length=64, description=STYLE_REF_HELP)
    style_ref_wav: str | None = Field(None, description=STYLE_REF_WAV_HELP)
    style_ref_text: str | None = Field(None, max_length=MAX_REFERENCE_TEXT, description=STYLE_REF_TEXT_HELP)
    style_strength: float | None = Field(None, ge=0.0, le=1.0, description=STRENGTH_HELP)
    style_component: int | None = Field(None, ge=0, le=MAX_STYLE_COMPONENT, description=COMPONENT_HELP)
    style_segments: int | None = Field(None, ge=1, le=MAX_STYLE_SEGMENTS, description=SEGMENTS_HELP)

    def acoustic(self) -> dict[str, Any]:
        return acoustic_controls(self.sigma, self.style_ref, self.style_ref_wav, self.style_ref_text,
                                 self.style_strength, self.style_component, self.style_segments)


class VoiceId(BaseModel):
    """OpenAI's custom voice reference, ``{"id": "voice_1234"}``: here a voice's name or id."""

    id: str = Field(max_length=200)


class SpeechRequest(ModelControls):
    """The body of OpenAI's ``POST /v1/audio/speech``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "tts-1", "input": "안녕하세요. 오늘 날씨가 좋네요.", "voice": "my-voice", "response_format": "mp3", "speed": 1.0}
            ]
        }
    )
    model: str = Field("tts-1", description="accepted for compatibility and ignored")
    input: str = Field(description=f"the text to speak, at most {OPENAI_MAX_INPUT_CHARS} characters")
    voice: str | VoiceId | None = Field(None, description="voice name or id (or {\"id\": …}); OpenAI voice names and "
                                                    "omission use the default voice")
    response_format: str = Field("mp3", description="mp3, opus, aac, wav, flac, pcm (16-bit little-endian) or ogg (Vorbis)")
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED)
    instructions: str | None = Field(None, description="accepted for compatibility and ignored")
    input_format: InputFormat = Field("text", description=INPUT_FORMAT_HELP)
    stream_format: StreamFormat = Field("audio", description=STREAM_FORMAT_HELP)


class SynthesizeRequest(ModelControls):
    """The body of ``POST /synthesize``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "첫 문장입니다. 두 번째 문장입니다. 마지막 문장입니다.", "voice": "my-voice", "speed": 1.0, "format": "wav", "stream": True}
            ]
        }
    )
    text: str = Field(description="the text to speak")
    voice: str | None = Field(None, description="voice name or id; the default voice when omitted")
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED)
    format: str = Field("wav", description="wav or pcm when streaming; any /infer format otherwise")
    stream: bool = Field(False, description="send audio sentence by sentence as it is synthesised")
    input_format: InputFormat = Field("text", description=INPUT_FORMAT_HELP)


# --- endpoints -------------------------------------------------------------------------------


@router.get("/infer", responses=AUDIO_RESPONSE, summary="Text to speech (query string)")
async def infer(
    text: Annotated[str, Query(description="the text to speak", examples=["안녕하세요. 만나서 반갑습니다."])],
    request: Request,
    principal: LimitedCaller,
    state: State,
    voice: Annotated[str | None, Query(description="voice name or id; the default voice when omitted")] = None,
    speed: Annotated[float, Query(ge=MIN_SPEED, le=MAX_SPEED)] = 1.0,
    format: Annotated[str, Query(description="wav, mp3, ogg, opus, aac, flac or pcm")] = "wav",
    vocoder_sigma: Annotated[float | None, Query(ge=0.0, le=MAX_VOCODER_SIGMA, description=VOCODER_SIGMA_HELP)] = None,
    denoise: Annotated[float | None, Query(ge=0.0, le=MAX_DENOISE, description=DENOISE_HELP)] = None,
    sigma: Annotated[float | None, Query(ge=0.0, le=MAX_SIGMA, description=SIGMA_HELP)] = None,
    style_ref: Annotated[str | None, Query(max_length=64, description=STYLE_REF_HELP)] = None,
    style_ref_text: Annotated[str | None, Query(max_length=MAX_REFERENCE_TEXT, description=STYLE_REF_TEXT_HELP)] = None,
    style_strength: Annotated[float | None, Query(ge=0.0, le=1.0, description=STRENGTH_HELP)] = None,
    style_component: Annotated[int | None, Query(ge=0, le=MAX_STYLE_COMPONENT, description=COMPONENT_HELP)] = None,
    style_segments: Annotated[int | None, Query(ge=1, le=MAX_STYLE_SEGMENTS, description=SEGMENTS_HELP)] = None,
    input_format: Annotated[InputFormat, Query(description=INPUT_FORMAT_HELP)] = "text",
    vocoder_voice: Annotated[str | None, Query(max_length=200, description=VOCODER_VOICE_HELP)] = None,
) -> Response:
    acoustic = acoustic_controls(sigma, style_ref, None, style_ref_text, style_strength, style_component, style_segments)
    return await _whole(state, principal, text, voice, speed, format, request=request,
                        vocoder=_vocoder_controls(vocoder_sigma, denoise) | acoustic, ssml=input_format == "ssml",
                        vocoder_voice=vocoder_voice)


@router.post("/v1/audio/speech", responses=AUDIO_RESPONSE, summary="OpenAI-compatible text to speech")
async def openai_speech(
    body: SpeechRequest,
    request: Request,
    principal: LimitedCaller,
    state: State,
) -> Response:
    voice = body.voice.id if isinstance(body.voice, VoiceId) else body.voice
    if voice and voice.lower() in OPENAI_VOICES and not await _has_operator_voice(state, voice, principal):
        voice = None  # an OpenAI name means the default voice unless the operator has a voice of that name
    limit = min(state.settings.max_text_chars, OPENAI_MAX_INPUT_CHARS)
    if body.stream_format == "sse":
        return await _sse(request, state, principal, body.input, voice, body.speed, body.response_format, limit,
                          _vocoder_controls(body.vocoder_sigma, body.denoise) | body.acoustic(),
                          ssml=body.input_format == "ssml", vocoder_voice=body.vocoder_voice)
    return await _whole(state, principal, body.input, voice, body.speed, body.response_format, limit,
                        field="input", request=request,
                        vocoder=_vocoder_controls(body.vocoder_sigma, body.denoise) | body.acoustic(),
                        ssml=body.input_format == "ssml", vocoder_voice=body.vocoder_voice)


@router.post("/synthesize", responses=AUDIO_RESPONSE, summary="Text to speech, optionally streamed")
async def synthesize(
    body: SynthesizeRequest,
    request: Request,
    principal: LimitedCaller,
    state: State,
) -> Response:
    vocoder = _vocoder_controls(body.vocoder_sigma, body.denoise) | body.acoustic()
    if not body.stream:
        return await _whole(state, principal, body.text, body.voice, body.speed, body.format, request=request,
                            vocoder=vocoder, ssml=body.input_format == "ssml", vocoder_voice=body.vocoder_voice)
    return await _streamed(request, state, principal, body.text, body.voice, body.speed, body.format, vocoder,
                           ssml=body.input_format == "ssml", vocoder_voice=body.vocoder_voice)


@router.get("/voices", summary="The voices this caller may use")
async def voices(principal: LimitedCaller, state: State) -> dict[str, Any]:
    visible = await run_in_threadpool(state.voices.voices_for, principal.owner_id)
    try:
        default = (await run_in_threadpool(state.voices.find, None, principal.owner_id)).id
    except UnknownVoiceError:
        default = None
    return {"voices": [info.public_dict() for info in visible], "default_voice": default}


@router.get("/health", summary="Liveness and readiness (no key needed)")
async def health(state: State) -> JSONResponse:
    """No key needed, so it names no private voice: only public voices' names, private ones counted."""
    stats = state.pool.stats
    body: dict[str, Any] = {
        "status": "ok",
        "queue": {
            "running": stats.running,
            "waiting": stats.waiting,
            "max_concurrency": state.pool.max_concurrency,
            "max_queue": state.pool.max_queue,
        },
    }
    try:
        infos = await run_in_threadpool(state.voices.all_voices)
    except Exception as error:  # noqa: BLE001 - a broken database makes this instance unready, not dead
        log.warning("health check failed: %s", error)
        return JSONResponse({**body, "status": "unavailable", "problem": type(error).__name__}, status_code=503)
    in_memory = state.voices.loaded_paths()
    loaded = [info for info in infos if info.path in in_memory]
    body["voices"] = len(infos)
    body["loaded_voices"] = sorted(info.name for info in loaded if not info.is_private)
    body["loaded_private_voices"] = sum(info.is_private for info in loaded)
    return JSONResponse(body)


# Uptime monitors often probe with HEAD and read a 405 as the server being down.
@router.head("/health", include_in_schema=False)
async def health_head(state: State) -> JSONResponse:
    return await health(state)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(
    principal: LimitedCaller,
    state: State,
    scope: Annotated[Literal["process", "cluster"], Query(description="cluster: summed over every server process sharing this Redis")] = "process",
) -> Response:
    if scope == "process":
        return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)
    if state.metrics_publisher is None:
        raise ApiError(400, "no_cluster", "scope=cluster needs shared state: set MOKSORI_REDIS_URL")
    try:
        body = await asyncio.to_thread(state.metrics_publisher.cluster)
    except RedisError:
        raise ApiError(503, "shared_state_unavailable", "the server's shared state (Redis) cannot be reached") from None
    return Response(body, media_type=METRICS_CONTENT_TYPE)


# --- whole responses ---------------------------------------------------------------------------


async def _whole(
    state: ServerState, principal: Principal, text: str, voice: str | None, speed: float, format_name: str,
    max_chars: int | None = None, *, field: str = "text", request: Request | None = None,
    vocoder: dict[str, float] | None = None, ssml: bool = False, vocoder_voice: str | None = None,
) -> Response:
    _check_text(text, max_chars or state.settings.max_text_chars, field)
    fmt = _format(format_name, "response_format" if field == "input" else "format")
    info = await _with_vocoder_voice(state, await _find_voice(state, voice, principal), vocoder_voice, principal)
    what = await _with_lexicon(state, info, text, ssml=ssml, field=field)
    # The cache key's text, marked by kind: a plain text that reads like an SSML key ("ssml:1.0:…")
    # must not answer (or poison) the SSML request.
    text = "text:" + what if isinstance(what, str) else "ssml:" + what.key()
    vocoder = vocoder or {}
    key = AudioCache.key(text, f"{info.id}|{info.version}{_vocoder_key(vocoder)}", speed, fmt.key)
    cached = state.cache.get(key)
    hit = cached is not None
    state.metrics.cache.labels("hit" if hit else "miss").inc()
    if cached is None:
        stop = threading.Event()
        job = _run(state, info, _synthesize_job, state, info, what, speed, fmt, stop, vocoder)
        cached = await (job if request is None else _unless_client_leaves(request, job, stop))
        state.cache.put(key, cached)
    state.metrics.audio_seconds.labels(metric_voice(info)).inc(cached.seconds)
    headers = {"X-Voice": _header_name(info), "X-Audio-Seconds": f"{cached.seconds:.3f}", "X-Cache": "hit" if hit else "miss"}
    if cached.alignment:  # an attention model lost its place in some sentence, even after a retry
        headers[ALIGNMENT_HEADER] = _latin1(cached.alignment)
    if request is None or request.method != "GET":
        return Response(cached.body, media_type=cached.media_type, headers=headers)
    # A browser's <audio src="/infer?…"> asks for byte ranges (Safari plays only what comes back 206).
    # The ETag tells one synthesis from another (sampling noise differs), so a browser asking for a
    # part with If-Range gets a part only of the audio it already holds.
    headers["Accept-Ranges"] = "bytes"
    headers["ETag"] = cached.etag
    span = _byte_range(request.headers, len(cached.body), headers["ETag"])
    if span is None:
        return Response(cached.body, media_type=cached.media_type, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{len(cached.body)}"
    return Response(cached.body[start:end + 1], status_code=206, media_type=cached.media_type, headers=headers)


_BYTE_RANGE = re.compile(r"bytes\s*=\s*([0-9]*)-([0-9]*)", re.IGNORECASE)


def _byte_range(headers: Any, size: int, etag: str) -> tuple[int, int] | None:
    """The first and last byte of a single ``Range: bytes=…`` within ``size`` bytes; None (the
    whole body) without one, for several ranges, other units, or an ``If-Range`` other than
    ``etag``; 416 when it starts past the end."""
    value = headers.get("range")
    if value is None or headers.get("if-range", etag) != etag:
        return None
    match = _BYTE_RANGE.fullmatch(value.strip())
    if match is None or not any(match.groups()):
        return None
    first, last = (_byte_position(digits) for digits in match.groups())
    if first is None:  # bytes=-N: the last N bytes (bytes=-0: none, unsatisfiable)
        start, end = (max(0, size - last) if last else size), size - 1
    else:
        start, end = first, min(last, size - 1) if last is not None else size - 1
        if last is not None and last < start:
            return None
    if start >= size:
        raise ApiError(416, "range_not_satisfiable", f"the range {value.strip()!r} starts past the end of this "
                       f"{size}-byte file", headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _byte_position(digits: str) -> int | None:
    """A range's byte position; one of more than 18 digits (past any file, and past what int()
    converts: 4,300 digits, a ValueError and a 500) is read as 10**18."""
    if not digits:
        return None
    significant = digits.lstrip("0") or "0"  # int() counts leading zeros against its limit too
    return int(significant) if len(significant) <= 18 else 10**18


ALIGNMENT_HEADER = "X-Moksori-Alignment"


def _latin1(value: str) -> str:
    """A header value: sentence excerpts may hold Korean, which HTTP headers cannot carry as is."""
    from urllib.parse import quote

    return quote(value, safe=" ;:,()'!?.-_=") if not value.isascii() else value


def _synthesize_job(
    state: ServerState, info: VoiceInfo, text: str | SsmlDocument, speed: float, fmt: AudioFormat, stop: threading.Event | None = None,
    vocoder: dict[str, float] | None = None,
) -> CachedAudio:
    """Runs on a worker thread: load (once), synthesise, encode. Once ``stop`` is set (the client
    left) synthesis ends at the next sentence, and a job that had not started yet does nothing."""
    if stop is not None and stop.is_set():  # the client left while the job waited in the queue
        raise ClientGone()
    synthesizer = state.voices.synthesizer(info)
    started = time.perf_counter()
    try:
        options = resolve_style(vocoder or {}, synthesizer)  # vocoder and acoustic controls
        halt = None if stop is None else stop.is_set
        if isinstance(text, SsmlDocument):
            result = synthesize_ssml(synthesizer, text, speed=speed, **options, stop=halt)
        else:
            result = synthesizer.synthesize_report(text, speed=speed, **options, stop=halt)
        wave = result.wave
    except SynthesisStopped:
        raise ClientGone() from None
    body, sample_rate = encode(wave, synthesizer.sample_rate, fmt)
    state.metrics.synthesis_seconds.labels(metric_voice(info)).observe(time.perf_counter() - started)
    media_type = fmt.media_type if fmt.container is not None else f"audio/pcm;rate={sample_rate}"
    alignment = "" if result.alignment_ok else result.alignment_summary()
    _count_alignment_failures(state, info, result.alignment_failures)
    return CachedAudio(body, media_type, len(wave) / synthesizer.sample_rate, alignment)


class ClientGone(Exception):
    """The client closed the connection before its audio was ready."""


async def _unless_client_leaves(request: Request, job: Any, stop: threading.Event) -> Any:
    """Await ``job``; if the client disconnects first, set ``stop`` (a queued job is dropped, a
    running one ends at the next sentence) and answer 499 to nobody."""
    work = asyncio.ensure_future(job)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return work.result()
        stop.set()
        work.cancel()
        raise ApiError(499, "client_closed_request", "the client closed the connection; synthesis was stopped")
    finally:
        gone.cancel()


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body was read already: only a disconnect can come)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


# --- streamed responses --------------------------------------------------------------------


async def _streamed(
    request: Request, state: ServerState, principal: Principal, text: str, voice: str | None, speed: float, format_name: str,
    vocoder: dict[str, float] | None = None, ssml: bool = False, vocoder_voice: str | None = None,
) -> Response:
    _check_text(text, state.settings.max_text_chars, "text")
    fmt = _format(format_name, "format")
    if fmt.name not in STREAM_FORMATS:
        raise ApiError(400, "unsupported_format", f"format {fmt.name!r} cannot be streamed; use one of: {', '.join(STREAM_FORMATS)}",
                       details={"field": "format"})
    info = await _with_vocoder_voice(state, await _find_voice(state, voice, principal), vocoder_voice, principal)
    what = await _with_lexicon(state, info, text, ssml=ssml)

    def sentences() -> Iterator[bytes]:
        # The alignment outcome cannot go in headers that left first: it is logged and counted
        # (moksori_alignment_failures); /v1/audio/speech with stream_format sse carries it.
        return (audio for kind, audio in _stream_events(state, info, what, speed, vocoder) if kind == "audio")

    chunks = state.pool.stream(sentences)
    try:
        # The first sentence is awaited before answering, so bad text still gets its 4xx.
        first = await _translate_errors(anext(chunks), info)
    except StopAsyncIteration:
        first = b""
    sample_rate = info.sample_rate
    body = _stream_body(request, state, info, chunks, first, streaming_wav_header(sample_rate) if fmt.name == "wav" else b"")
    media_type = "audio/wav" if fmt.name == "wav" else f"audio/pcm;rate={sample_rate}"
    headers = {"X-Voice": _header_name(info), "X-Sample-Rate": str(sample_rate), "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type=media_type, headers=headers)


async def _stream_body(
    request: Request, state: ServerState, info: VoiceInfo, chunks: AsyncIterator[bytes], first: bytes, header: bytes
) -> AsyncIterator[bytes]:
    sent = len(first)
    try:
        yield header + first
        async for chunk in chunks:
            if await request.is_disconnected():
                break
            sent += len(chunk)
            yield chunk
    finally:
        await chunks.aclose()  # stops the worker between sentences if the client left
        state.metrics.audio_seconds.labels(metric_voice(info)).inc(sent / 2 / info.sample_rate)


def _stream_events(
    state: ServerState, info: VoiceInfo, what: str | SsmlDocument, speed: float, vocoder: dict[str, Any] | None,
    sample_rate: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """Runs on a worker: ``("audio", pcm16 bytes)`` per chunk as it is made (resampled on the way
    to ``sample_rate`` when one is given), then ``("done", the alignment failures)``; the failures
    are also counted in the metrics."""
    synthesizer = state.voices.synthesizer(info)
    options = resolve_style(vocoder or {}, synthesizer)  # vocoder and acoustic controls
    failures: list[AlignmentFailure] = []
    if isinstance(what, SsmlDocument):
        chunks: Iterator[Any] = stream_ssml(synthesizer, what, speed=speed, failures=failures, **options)
    else:
        chunks = synthesizer.stream(what, speed=speed, **options)
        failures = chunks.alignment_failures
    if sample_rate is not None and sample_rate != synthesizer.sample_rate:
        chunks = _resampled(chunks, synthesizer.sample_rate, sample_rate)
    for chunk in chunks:
        yield "audio", pcm16(chunk)
    _count_alignment_failures(state, info, failures)
    yield "done", list(failures)


def _resampled(chunks: Iterator[np.ndarray], from_rate: int, to_rate: int) -> Iterator[np.ndarray]:
    """The chunks resampled as they come; their concatenation is the whole audio resampled."""
    stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")
    for chunk in chunks:
        resampled = stream.resample_chunk(np.asarray(chunk, dtype=np.float32), last=False)
        if resampled.size:
            yield resampled
    yield stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def _count_alignment_failures(state: ServerState, info: VoiceInfo, failures: list[AlignmentFailure]) -> None:
    if failures:
        state.metrics.alignment_failures.labels(metric_voice(info)).inc(len(failures))


# --- server-sent events (OpenAI's stream_format "sse") ------------------------------------------


async def _sse(
    request: Request, state: ServerState, principal: Principal, text: str, voice: str | None, speed: float,
    format_name: str, max_chars: int, vocoder: dict[str, Any], *, ssml: bool = False, vocoder_voice: str | None = None,
) -> Response:
    """``speech.audio.delta`` events (base64 audio) as sentences are made, then ``speech.audio.done``
    with the alignment outcome, which headers sent before synthesis cannot carry."""
    _check_text(text, max_chars, "input")
    fmt = _format(format_name, "response_format")
    if fmt.name not in STREAM_FORMATS:
        raise ApiError(400, "unsupported_format", f"response_format {fmt.name!r} cannot be sent with stream_format "
                       f"'sse'; use one of: {', '.join(STREAM_FORMATS)}", details={"field": "response_format"})
    info = await _with_vocoder_voice(state, await _find_voice(state, voice, principal), vocoder_voice, principal)
    what = await _with_lexicon(state, info, text, ssml=ssml, field="input")
    sample_rate = fmt.output_rate(info.sample_rate)
    events = state.pool.stream(lambda: _stream_events(state, info, what, speed, vocoder, sample_rate))
    try:
        # The first chunk is awaited before answering, so bad text still gets its 4xx.
        first = await _translate_errors(anext(events), info)
    except StopAsyncIteration:
        first = ("done", [])
    header = streaming_wav_header(sample_rate) if fmt.name == "wav" else b""
    body = _sse_body(request, state, info, events, first, header, len(text), sample_rate)
    headers = {"X-Voice": _header_name(info), "X-Sample-Rate": str(sample_rate), "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def _sse_body(
    request: Request, state: ServerState, info: VoiceInfo, events: AsyncIterator[tuple[str, Any]],
    first: tuple[str, Any], header: bytes, input_chars: int, sample_rate: int,
) -> AsyncIterator[bytes]:
    sent, item = 0, first
    try:
        while True:
            kind, value = item
            if kind == "done":
                if header:  # no audio came: the WAV header still opens the file
                    yield _sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(header).decode("ascii")})
                yield _sse_event(_done_event(value, sent, sample_rate, input_chars))
                return
            sent += len(value)
            yield _sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(header + value).decode("ascii")})
            header = b""
            if await request.is_disconnected():
                return
            try:
                item = await _translate_errors(anext(events), info)
            except StopAsyncIteration:
                return
            except ApiError as error:  # the status line left already: the error is the last event
                yield _sse_event({"type": "error", "error": {"code": error.code, "message": error.message}})
                return
    finally:
        await events.aclose()  # stops the worker between chunks if the client left
        state.metrics.audio_seconds.labels(metric_voice(info)).inc(sent / 2 / sample_rate)


def _done_event(failures: list[AlignmentFailure], sent: int, sample_rate: int, input_chars: int) -> dict[str, Any]:
    """OpenAI's done event (usage: moksori has no tokens and counts the input's characters) with
    moksori's outcome: the alignment summary (as the X-Moksori-Alignment header of whole responses)
    and each failed sentence."""
    summary = "ok" if not failures else "failed; " + "; ".join(str(failure) for failure in failures)
    return {
        "type": "speech.audio.done",
        "usage": {"input_tokens": input_chars, "output_tokens": 0, "total_tokens": input_chars},
        "moksori": {
            "alignment": summary,
            "alignment_failures": [{"sentence": failure.index + 1, "text": failure.text, "reasons": failure.reasons}
                                   for failure in failures],
            "audio_seconds": round(sent / 2 / sample_rate, 3),
            "sample_rate": sample_rate,
        },
    }


def _sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"


# --- shared steps ----------------------------------------------------------------------------


ALLOWED_CONTROLS = frozenset("\t\n\r")


def _check_text(text: str, max_chars: int, field: str = "text") -> None:
    if not text or not text.strip():
        raise ApiError(400, "empty_text", f"{field} is empty: nothing to say", details={"field": field})
    if len(text) > max_chars:
        raise ApiError(413, "text_too_long", f"{field} has {len(text)} characters; the limit is {max_chars}",
                       details={"limit": max_chars, "field": field})
    for position, char in enumerate(text):
        category = unicodedata.category(char)
        if (category == "Cc" and char not in ALLOWED_CONTROLS) or category == "Cs":
            kind = "a lone surrogate" if category == "Cs" else "a control character"
            raise ApiError(400, "invalid_text",
                           f"{field} contains {kind} (U+{ord(char):04X}) at position {position}; only tabs and "
                           "line breaks are allowed among control characters", details={"field": field, "position": position})


def _vocoder_controls(sigma: float | None, denoise: float | None) -> dict[str, float]:
    """The Synthesizer's ``sigma``/``denoise`` keywords for the fields a request set."""
    return {key: float(value) for key, value in (("sigma", sigma), ("denoise", denoise)) if value is not None}


def _vocoder_key(vocoder: dict[str, float]) -> str:
    """What the vocoder controls add to a cache key (nothing when the request leaves the defaults)."""
    return "".join(f"|{key}={value!r}" for key, value in sorted(vocoder.items()))


def _format(name: str, field: str) -> AudioFormat:
    """The format ``name`` asked for in ``field``; ``response_format`` is /v1's, where pcm is OpenAI's."""
    try:
        fmt = audio_format(name)
        return OPENAI_PCM if field == "response_format" and fmt.name == OPENAI_PCM.name else fmt
    except ValueError as error:
        raise ApiError(400, "unsupported_format", str(error), details={"field": field}) from None


def metric_voice(info: VoiceInfo) -> str:
    """The ``voice`` label of metrics, which every key may read: an operator's public voice by
    name; private voices and studio voices (names chosen by users, unbounded in number) pooled."""
    if info.is_private:
        return "(private)"
    return "(studio)" if info.studio else info.name


def _header_name(info: VoiceInfo) -> str:
    # HTTP headers are latin-1: a Korean voice name goes percent-encoded (UTF-8), ASCII names unchanged.
    return quote(info.name, safe=" -_.()")


async def _find_voice(state: ServerState, voice: str | None, principal: Principal, field: str = "voice") -> VoiceInfo:
    try:
        return await run_in_threadpool(state.voices.find, voice, principal.owner_id)
    except UnknownVoiceError as error:
        if not error.available:
            raise ApiError(404, "no_voices", f"this server has no voices; put voice bundles into {state.settings.voices_dir}") from None
        raise ApiError(404, "voice_not_found", str(error), details={"available": error.available, "field": field}) from None


async def _with_lexicon(
    state: ServerState, info: VoiceInfo, text: str, *, ssml: bool = False, field: str = "text"
) -> str | SsmlDocument:
    """The text after the voice's pronunciation lexicon (over the global one), or with ``ssml`` the
    parsed document (the lexicon applied to its text, not its markup; 400 invalid_ssml naming the
    line and column). The cache key uses the result, so an edited lexicon is heard at once."""
    from moksori.server.lexicon import voice_lexicon
    from moksori.text.lexicon import LexiconError

    try:
        lexicon = await run_in_threadpool(voice_lexicon, state, info)
    except LexiconError as error:  # the operator's lexicon file is broken: say so, do not guess
        log.error("lexicon of voice %s is unusable: %s", info.path, error)
        raise ApiError(500, "lexicon_unusable", f"the pronunciation lexicon of voice {info.name!r} cannot be read") from None
    if not ssml:
        return lexicon.apply(text)
    try:
        return parse_ssml(text, language=info.language, lexicon=lexicon.apply)
    except SsmlError as error:
        raise ApiError(400, "invalid_ssml", f"{field}: {error}",
                       details={"field": field, "line": error.line, "column": error.column}) from None


async def _with_vocoder_voice(
    state: ServerState, info: VoiceInfo, vocoder_voice: str | None, principal: Principal
) -> VoiceInfo:
    """``info`` through the vocoder of the voice named ``vocoder_voice`` (one the caller may use):
    404 when there is no such voice, 400 when it has no trained vocoder or other mel parameters."""
    if not vocoder_voice:
        return info
    from moksori.synthesis import read_voice_json
    from moksori.synthesis.bundle import check_vocoder_fits

    lender = await _find_voice(state, vocoder_voice, principal, "vocoder_voice")
    if lender.path == info.path:
        return info
    def check() -> None:
        check_vocoder_fits(read_voice_json(info.path), read_voice_json(lender.path), f"vocoder_voice {lender.name!r}")

    try:
        await run_in_threadpool(check)
    except VoiceError as error:
        raise ApiError(400, "vocoder_mismatch", str(error)) from None
    return info.with_vocoder(lender)


async def _has_operator_voice(state: ServerState, voice: str, principal: Principal) -> bool:
    try:
        info = await run_in_threadpool(state.voices.find, voice, principal.owner_id)
    except UnknownVoiceError:
        return False
    return not info.studio


async def _run(state: ServerState, info: VoiceInfo, function: Any, *args: Any) -> Any:
    return await _translate_errors(state.pool.run(function, *args), info)


async def _translate_errors(awaitable: Any, info: VoiceInfo) -> Any:
    """Await a synthesis; turn what the Synthesizer raises into API errors."""
    try:
        return await awaitable
    except (ApiError, StopAsyncIteration):
        raise
    except ClientGone:
        raise ApiError(499, "client_closed_request", "the client closed the connection; synthesis was stopped") from None
    except UnreadableTextError as error:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in error.characters)
        raise ApiError(422, "unreadable_text", f"voice {info.name!r} cannot read these characters: {shown}",
                       details={"characters": error.characters}) from None
    except BrokenVoiceOutput as error:
        log.error("voice %s: %s", info.path, error)
        raise ApiError(500, "voice_output_invalid", str(error)) from None
    except VoiceError as error:
        log.error("voice %s cannot be loaded: %s", info.path, error)
        raise ApiError(500, "voice_unusable", f"voice {info.name!r} cannot be loaded: {error}") from None
    except UnsupportedControl as error:
        raise ApiError(422, "unsupported_control", str(error), details={"field": error.field}) from None
    except ValueError as error:
        raise ApiError(422, "invalid_text", str(error)) from None
    except Exception as error:
        log.exception("synthesis failed for voice %s", info.name)
        raise ApiError(500, "synthesis_failed", f"synthesis failed ({type(error).__name__}); the server is still running") from None
