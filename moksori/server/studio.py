"""The recording studio over HTTP: the page (``GET /studio``), its static files, and the JSON API
under ``/api/studio``. Logic lives in :mod:`moksori.studio`; this module translates requests into
calls, studio errors into statuses (404, 409, 400, 413), and handles accounts' session cookies.

The studio needs a database (``db_url``); without one its API answers 503. Its settings come
from :func:`configure` (before the app starts) or ``MOKSORI_STUDIO_*`` environment variables.
"""

from __future__ import annotations

import errno
import logging
import unicodedata
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from moksori.server.errors import ApiError
from moksori.server.guard import SignInGuard
from moksori.server.shared import RedisSignInGuard
from moksori.server.origin import check_origin
from moksori.server.tts import OPENAI_VOICES
from moksori.server.voices import STUDIO_BUNDLE
from moksori.studio.jobs import RunInfo, TrainingJobs
from moksori.studio.service import (
    MAX_PROMPT_FILE_BYTES,
    ConflictError,
    NotFoundError,
    PromptStatus,
    StudioError,
    StudioService,
    StudioSettings,
    TakeResult,
    TooLargeError,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static" / "studio"
STATIC_FILES = {
    "studio.js": "text/javascript",
    "studio.css": "text/css",
    "recorder-worklet.js": "text/javascript",
    "lexicon.js": "text/javascript",
}
COOKIE = "moksori_studio"
SESSION_DAYS = 30
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the small fields beside the file
SIGNUPS_PER_MINUTE = 10  # per client address
# Database ids are 64-bit signed integers: a larger number names nothing (404/422, never a 500).
MAX_ID = 2**63 - 1
Id = Annotated[int, PathParam(ge=0, le=MAX_ID)]
OptionalId = Annotated[int | None, Query(ge=0, le=MAX_ID)]
# The studio's pages: no framing, and nothing loaded from anywhere but this server.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class Studio:
    """What the studio's routes share in one app (``app.state.studio``)."""

    settings: StudioSettings
    service: StudioService
    jobs: TrainingJobs
    anonymous_allowed: bool
    signup_allowed: bool
    guard: SignInGuard | RedisSignInGuard


def configure(app: FastAPI, settings: StudioSettings) -> None:
    """Use ``settings`` for the studio of ``app`` (call before the app starts)."""
    app.state.studio_settings = settings


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    studio = await run_in_threadpool(_open_studio, app)
    app.state.studio = studio
    try:
        yield
    finally:
        if studio is not None:
            await run_in_threadpool(studio.jobs.shutdown)
            studio.service.background_judges.close()


def _open_studio(app: FastAPI) -> Studio | None:
    state = app.state.moksori
    if state.database is None:
        log.info("recording studio off: the server has no database")
        return None
    settings = getattr(app.state, "studio_settings", None) or StudioSettings.from_env()
    service = StudioService(state.database, settings, state.settings.voices_dir)
    service.reconcile()
    jobs = TrainingJobs(service, **_training_queue())
    resumed = jobs.start()
    if resumed:
        log.info("studio: resuming training runs %s", resumed)
    open_server = not state.settings.keys_required  # loopback, unless the operator asked for keys
    anonymous = open_server if settings.allow_anonymous is None else settings.allow_anonymous
    signup = open_server if settings.allow_signup is None else settings.allow_signup
    guard = SignInGuard() if state.redis is None else RedisSignInGuard(state.redis)  # shared by every instance
    return Studio(settings, service, jobs, anonymous, signup, guard)


def _training_queue() -> dict[str, Any]:
    """With MOKSORI_TRAINING_QUEUE, runs go to `moksori worker` processes (moksori.studio.queue)."""
    from moksori.studio.queue import TrainingQueue, queue_url

    url = queue_url()
    if url is None:
        return {}
    training_queue = TrainingQueue(url)
    return {"training_queue": training_queue, "stages": training_queue.stages}


class _StudioRoute(APIRoute):
    """Refuses state-changing requests from foreign pages (Origin/Referer), and turns the studio's
    errors and storage failures into the API's JSON errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            check_origin(request)
            try:
                return await handler(request)
            except StudioError as error:
                raise _api_error(error) from error
            except (TimeoutError, ConnectionError):
                raise  # not the data folder's doing
            except OSError as error:
                raise storage_error(error) from error

        return route


def storage_error(error: OSError) -> ApiError:
    """503/507 with a code for a data folder that cannot be written (read-only, full, gone)."""
    log.error("studio storage failed: %s", error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return ApiError(507, "storage_full", "the server's data folder is full; nothing was changed. Try again later",
                        headers={"Retry-After": "60"})
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ApiError(503, "storage_read_only", "the server's data folder cannot be written at the moment; "
                        "nothing was changed. Try again later", headers={"Retry-After": "60"})
    name = errno.errorcode.get(error.errno or 0, type(error).__name__)
    return ApiError(503, "storage_unavailable", f"the server's data folder failed ({name}); nothing was changed. "
                    "Try again later", headers={"Retry-After": "60"})


def _api_error(error: StudioError) -> ApiError:
    if isinstance(error, NotFoundError):
        status = 404
    elif isinstance(error, ConflictError):
        status = 409
    elif isinstance(error, TooLargeError):
        status = 413
    else:
        status = 400
    return ApiError(status, error.code, error.message)


router = APIRouter(lifespan=_lifespan, route_class=_StudioRoute, tags=["studio"])


# --- dependencies ------------------------------------------------------------------------------


def get_studio(request: Request) -> Studio:
    studio = getattr(request.app.state, "studio", None)
    if studio is None:
        raise ApiError(503, "studio_unavailable", "the recording studio needs a database: start the server with a db_url")
    return studio


StudioDep = Annotated[Studio, Depends(get_studio)]


def session_user(request: Request, studio: StudioDep) -> Any:  # a User row or None
    from moksori.store.accounts import session_user as user_of

    return user_of(studio.service.db, request.cookies.get(COOKIE))


def caller(request: Request, studio: StudioDep) -> int | None:
    """The signed-in user's id, or None for anonymous use (401 where that is not allowed)."""
    user = session_user(request, studio)
    if user is None and not studio.anonymous_allowed:
        raise ApiError(401, "sign_in_required", "sign in to use the recording studio on this server")
    return None if user is None else user.id


Caller = Annotated[int | None, Depends(caller)]


# --- pages -------------------------------------------------------------------------------------


@router.get("/studio", include_in_schema=False)
async def studio_page(request: Request) -> HTMLResponse:
    studio = getattr(request.app.state, "studio", None)
    return HTMLResponse(page_html(studio is not None and studio.signup_allowed), headers=PAGE_HEADERS)


def page_html(signup_allowed: bool) -> str:
    """The studio page; without its sign-up button and hint when sign-up is off."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    if not signup_allowed:
        html = html.replace('<button id="signup-button" type="submit" data-action="signup" class="secondary">Sign up</button>', "")
        html = html.replace('<span id="signup-hint"> (or sign up)</span>', "")
    return html


@router.get("/studio/static/{name}", include_in_schema=False)
async def studio_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", f"no studio file {name!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=PAGE_HEADERS)


# --- accounts ----------------------------------------------------------------------------------


class Credentials(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


def _user_json(user: Any) -> dict[str, Any] | None:
    return None if user is None else {"id": user.id, "username": user.username}


@router.get("/api/studio/account", summary="Who is signed in, and whether anonymous use is allowed")
def account(request: Request, studio: StudioDep) -> dict[str, Any]:
    return {"user": _user_json(session_user(request, studio)), "anonymous_allowed": studio.anonymous_allowed,
            "signup_allowed": studio.signup_allowed}


@router.post("/api/studio/account/signup", status_code=201, summary="Create an account and sign in")
def signup(body: Credentials, request: Request, response: Response, studio: StudioDep) -> dict[str, Any]:
    from moksori.store.accounts import create_user

    if not studio.signup_allowed:
        raise ApiError(403, "signup_disabled", "sign-up is off on this server (it is reachable from other machines); "
                       "ask the operator for an account, or the operator turns sign-up on with "
                       "MOKSORI_STUDIO_ALLOW_SIGNUP=true")
    request.app.state.moksori.rate_limiter.check(f"signup:{client_address(request)}", SIGNUPS_PER_MINUTE,
                                                 what="sign-ups from this address")
    try:
        user = create_user(studio.service.db, body.username, body.password)
    except ValueError as error:
        status = 409 if "already taken" in str(error) else 400
        raise ApiError(status, "invalid_account", str(error)) from error
    _set_cookie(request, response, user.id, studio)
    return {"user": _user_json(user)}


@router.post("/api/studio/account/signin", summary="Sign in (sets the session cookie)")
def signin(body: Credentials, request: Request, response: Response, studio: StudioDep) -> dict[str, Any]:
    from moksori.store.accounts import authenticate

    address = client_address(request)
    studio.guard.check(body.username, address)  # before hashing: a locked guess costs nothing
    user = authenticate(studio.service.db, body.username, body.password)
    if user is None:
        studio.guard.failed(body.username, address)
        raise ApiError(401, "wrong_credentials", "wrong username or password")
    studio.guard.succeeded(body.username)
    _set_cookie(request, response, user.id, studio)
    return {"user": _user_json(user)}


@router.post("/api/studio/account/signout", summary="Sign out (ends the session on the server, clears the cookie)")
def signout(request: Request, response: Response, studio: StudioDep) -> dict[str, Any]:
    from moksori.store.accounts import end_session

    end_session(studio.service.db, request.cookies.get(COOKIE))
    response.delete_cookie(COOKIE, path="/")
    return {"user": None}


def client_address(request: Request) -> str:
    """The client's address as uvicorn saw it (the proxy's, unless uvicorn trusts its
    forwarded headers: --proxy-headers --forwarded-allow-ips)."""
    return request.client.host if request.client is not None else "unknown"


def _set_cookie(request: Request, response: Response, user_id: int, studio: Studio) -> None:
    from moksori.store.accounts import create_session

    response.set_cookie(
        COOKIE, create_session(studio.service.db, user_id, SESSION_DAYS), max_age=SESSION_DAYS * 86400, path="/",
        httponly=True, samesite="lax", secure=request.url.scheme == "https",
    )


# --- voices ------------------------------------------------------------------------------------


class NewVoice(BaseModel):
    name: str = Field(max_length=200)
    language: str = "ko"
    description: str = Field(default="", max_length=2000)
    private: bool = False


def _voice_json(voice: Any) -> dict[str, Any]:
    return {
        "id": voice.id,
        "name": voice.name,
        "language": voice.language,
        "description": voice.description,
        "private": voice.is_private,
        "sample_rate": voice.sample_rate,
        "trained": voice.bundle_path is not None,
        "created_at": voice.created_at.isoformat(),
    }


@router.get("/api/studio/voices", summary="The caller's voices")
def list_voices(studio: StudioDep, user: Caller) -> dict[str, Any]:
    return {"voices": [_voice_json(v) for v in studio.service.list_voices(user)]}


@router.post("/api/studio/voices", status_code=201, summary="Create a voice")
def create_voice(body: NewVoice, request: Request, studio: StudioDep, user: Caller) -> dict[str, Any]:
    _check_voice_name(request, body.name)
    voice = studio.service.create_voice(body.name, body.language, body.description, owner_id=user, private=body.private)
    return _voice_json(voice)


def _check_voice_name(request: Request, name: str) -> None:
    """409 for a name that could be taken for an operator's voice: an operator or shipped voice's
    id or name, an OpenAI voice name, a number (voice ids are numbers) or a bundle folder name."""
    cleaned = unicodedata.normalize("NFC", name or "").strip().casefold()
    reserved = {n.casefold() for n in request.app.state.moksori.voices.operator_names()} | OPENAI_VOICES
    if cleaned in reserved or cleaned.isdigit() or STUDIO_BUNDLE.fullmatch(cleaned):
        raise ApiError(409, "voice_name_reserved",
                       f"the voice name {name.strip()!r} is reserved (it names a voice of this server, an OpenAI voice, "
                       "or looks like a voice id); choose another name")


@router.get("/api/studio/voices/{voice_id}", summary="One voice and its progress")
def get_voice(voice_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    voice = studio.service.get_voice(voice_id, user)
    return {**_voice_json(voice), "progress": studio.service.progress(voice_id, user).to_dict()}


@router.delete("/api/studio/voices/{voice_id}", summary="Delete a voice (needs confirm=<its name>)")
def delete_voice(voice_id: Id, studio: StudioDep, user: Caller, confirm: str | None = None) -> dict[str, Any]:
    voice = studio.service.get_voice(voice_id, user)
    if confirm == voice.name:
        studio.service.check_writable()  # a read-only folder refuses before any run is cancelled
        studio.jobs.cancel_voice(voice.id)
    studio.service.delete_voice(voice_id, user, confirm)
    return {"deleted": _voice_json(voice)}


@router.get("/api/studio/voices/{voice_id}/progress", summary="Prompts done, minutes recorded, goals")
def progress(voice_id: Id, studio: StudioDep, user: Caller, prompt_set_id: OptionalId = None) -> dict[str, Any]:
    return studio.service.progress(voice_id, user, prompt_set_id).to_dict()


@router.get("/api/studio/voices/{voice_id}/export", summary="The kept takes as an LJSpeech dataset (zip)")
def export_zip(voice_id: Id, studio: StudioDep, user: Caller) -> FileResponse:
    path, filename = studio.service.export_zip(voice_id, user)
    return FileResponse(path, media_type="application/zip", filename=filename,
                        background=BackgroundTask(path.unlink, missing_ok=True))


# --- prompt sets -------------------------------------------------------------------------------


def _prompt_set_json(prompt_set: Any, count: int) -> dict[str, Any]:
    return {"id": prompt_set.id, "name": prompt_set.name, "language": prompt_set.language,
            "source": prompt_set.source, "prompts": count}


def _status_json(status: PromptStatus) -> dict[str, Any]:
    return {
        "id": status.prompt.id,
        "position": status.prompt.position,
        "text": status.prompt.text,
        "takes": status.takes,
        "kept": None if status.kept is None else _recording_json(status.kept),
        "latest": None if status.latest is None else _recording_json(status.latest),
    }


@router.get("/api/studio/prompt-sets", summary="Built-in and uploaded prompt sets")
def list_prompt_sets(studio: StudioDep, user: Caller) -> dict[str, Any]:
    sets = studio.service.list_prompt_sets(user)
    return {"prompt_sets": [_prompt_set_json(s, n) for s, n in sets]}


@router.post("/api/studio/prompt-sets", status_code=201,
             summary="Upload a prompt file (multipart: name, language, file; 'sentence<TAB>length' or one per line)")
async def upload_prompt_set(request: Request, studio: StudioDep, user: Caller) -> dict[str, Any]:
    form = await read_form(request, MAX_PROMPT_FILE_BYTES + FORM_OVERHEAD_BYTES)
    try:
        upload = _form_file(form, "file")
        data = await upload.read()
        name = str(form.get("name") or upload.filename or "uploaded prompts")
        language = str(form.get("language") or "ko")
    finally:
        await form.close()
    prompt_set, count, notes = await run_in_threadpool(
        studio.service.upload_prompt_set, name, language, data, owner_id=user
    )
    return {**_prompt_set_json(prompt_set, count), "warnings": notes}


@router.get("/api/studio/prompt-sets/{set_id}/prompts", summary="A set's prompts, with a voice's takes")
def prompts(set_id: Id, studio: StudioDep, user: Caller, voice_id: OptionalId = None) -> dict[str, Any]:
    statuses = studio.service.prompt_statuses(set_id, voice_id, user)
    return {"prompt_set_id": set_id, "prompts": [_status_json(s) for s in statuses]}


# --- takes -------------------------------------------------------------------------------------


def _recording_json(recording: Any) -> dict[str, Any]:
    quality = recording.quality or {}
    measures = ("rms_dbfs", "snr_db", "peak", "leading_silence_s", "trailing_silence_s", "chars_per_second")
    return {
        "id": recording.id,
        "voice_id": recording.voice_id,
        "prompt_id": recording.prompt_id,
        "take": recording.take,
        "duration_s": round(recording.duration_s, 3),
        "sample_rate": recording.sample_rate,
        "verdict": recording.verdict,
        "kept": recording.kept,
        "problems": quality.get("problems", []),
        "quality": {**{key: quality.get(key) for key in measures},
                    # The speaker's learned seconds per syllable the take was judged with (None: the prior).
                    "speaker_rate": quality.get("speaker_s_per_syllable")},
        # Edge silence cut when the take was stored (None: not trimmed); POST .../untrim undoes it.
        "trim": quality.get("trim"),
        # The background judges (recogniser vs script, DNSMOS): status pending/done/off/skipped/error.
        "judges": _judges_json(quality.get("judges")),
        "audio_url": f"/api/studio/recordings/{recording.id}/audio",
    }


def _judges_json(judges: dict[str, Any] | None) -> dict[str, Any] | None:
    """The take's judges state without the server's own bookkeeping (when it was handed over)."""
    return None if judges is None else {k: v for k, v in judges.items() if k != "since"}


def _take_json(result: TakeResult) -> dict[str, Any]:
    return {
        "recording": _recording_json(result.recording),
        "ok": not result.problems,
        "problems": [{"code": p.code, "message": p.message} for p in result.problems],
        "source_sample_rate": result.source_sample_rate,
        "resampled": result.resampled,
    }


@router.post("/api/studio/voices/{voice_id}/takes", status_code=201,
             summary="Upload a take (multipart: prompt_id, audio); answers with its quality verdict")
async def upload_take(voice_id: Id, request: Request, studio: StudioDep, user: Caller) -> dict[str, Any]:
    form = await read_form(request, studio.settings.max_upload_bytes + FORM_OVERHEAD_BYTES)
    try:
        prompt_id = _form_int(form, "prompt_id")
        data = await _form_file(form, "audio").read()
    finally:
        await form.close()
    result = await run_in_threadpool(studio.service.store_take, voice_id, prompt_id, data, user)
    return _take_json(result)


class KeptChange(BaseModel):
    kept: bool


@router.get("/api/studio/recordings/{recording_id}",
            summary="One take, with its verdict and the background judges' result once they have run")
def get_take(recording_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return _recording_json(studio.service.take_with_judges(recording_id, user))


@router.patch("/api/studio/recordings/{recording_id}", summary="Keep a take (or drop it from the dataset)")
def set_kept(recording_id: Id, body: KeptChange, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return _recording_json(studio.service.set_kept(recording_id, body.kept, user))


@router.post("/api/studio/recordings/{recording_id}/trim", summary="Trim the take's leading and trailing silence")
def trim(recording_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return _take_json(studio.service.trim_take(recording_id, user))


@router.post("/api/studio/recordings/{recording_id}/untrim",
             summary="Undo a take's trimming: its untrimmed recording becomes the take again")
def untrim(recording_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return _take_json(studio.service.untrim_take(recording_id, user))


@router.delete("/api/studio/recordings/{recording_id}", summary="Delete a take and its file")
def delete_take(recording_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return {"deleted": _recording_json(studio.service.delete_take(recording_id, user))}


@router.get("/api/studio/recordings/{recording_id}/audio", summary="A take's WAV file")
def take_audio(recording_id: Id, studio: StudioDep, user: Caller) -> FileResponse:
    return FileResponse(studio.service.take_file(recording_id, user), media_type="audio/wav")


# --- training ----------------------------------------------------------------------------------


class NewRun(BaseModel):
    recipe: str | None = None
    init_from_voice: str | None = Field(default=None, max_length=200, description=(
        "a voice (id or name from /voices) to start from: without a recipe, a fine-tune with the voice's own "
        "architecture and small-data settings; with one, a warm start (refused when most weights would not fit)"))
    device: Literal["any", "cpu", "cuda"] | None = Field(default=None, description=(
        "where the run may train: with training workers, only workers of that device take it (default: any, "
        "or cuda when the recipe uses mixed precision); on a single server, cuda is refused without a GPU"))


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "voice_id": run.voice_id,
        "recipe": run.recipe,
        "status": run.status,
        "progress": round(run.progress, 4),
        "step": run.step,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat() if run.updated_at else None,
    }


def _info_json(info: RunInfo) -> dict[str, Any]:
    return {**_run_json(info.run), "stage": info.stage, "log_tail": info.log_tail}


@router.get("/api/studio/recipes", summary="Training recipes a run may use")
def recipes(request: Request, studio: StudioDep, user: Caller) -> dict[str, Any]:
    from moksori.studio.plans import FINETUNE_RECIPE

    # The fine-tune settings are offered as "fine-tune from <voice>", not as a recipe of their own.
    names = [name for name in studio.jobs.recipes() if name != FINETUNE_RECIPE]
    default = studio.settings.default_recipe if studio.settings.default_recipe in names else (names[0] if names else None)
    # The voices a run may start from, as _base_voice finds them: the session's owner sees their
    # private voices here, which /voices (answering by API key) leaves out.
    bases = [info.public_dict() for info in request.app.state.moksori.voices.voices_for(user)]
    return {"recipes": names, "default": default, "finetune": studio.jobs.finetune_recipe(), "bases": bases}


def _base_voice(request: Request, wanted: str | None, user: int | None) -> tuple[str, Path] | None:
    """(name, bundle folder) of a voice the caller may use, for a run to start from."""
    if not wanted:
        return None
    from moksori.server.voices import UnknownVoiceError

    try:
        info = request.app.state.moksori.voices.find(wanted, user)
    except UnknownVoiceError as error:
        raise ApiError(400, "unknown_voice", str(error)) from error
    return info.name, info.path


@router.get("/api/studio/voices/{voice_id}/training/plan",
            summary="What a run would train, the base voice's weights it keeps, and about how long it takes")
def training_plan(voice_id: Id, request: Request, studio: StudioDep, user: Caller,
                  init_from_voice: Annotated[str | None, Query(max_length=200)] = None,
                  recipe: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    base = _base_voice(request, init_from_voice, user)
    return studio.jobs.plan(voice_id, recipe, user, base).to_dict()


@router.post("/api/studio/voices/{voice_id}/training", status_code=202,
             summary="Start training a voice (init_from_voice without recipe: fine-tune that voice)")
def start_training(voice_id: Id, body: NewRun, request: Request, studio: StudioDep, user: Caller) -> dict[str, Any]:
    base = _base_voice(request, body.init_from_voice, user)
    run = studio.jobs.start_run(voice_id, body.recipe, user, base=base, device=body.device)
    return _run_json(run)


@router.get("/api/studio/voices/{voice_id}/training", summary="A voice's training runs, newest first")
def list_runs(voice_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return {"runs": [_run_json(run) for run in studio.jobs.runs(voice_id, user)]}


@router.get("/api/studio/training/{run_id}", summary="A run's status, progress and log tail")
def run_status(run_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return _info_json(studio.jobs.info(run_id, user))


@router.post("/api/studio/training/{run_id}/cancel", summary="Cancel a queued or running run")
def cancel_run(run_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return _run_json(studio.jobs.cancel(run_id, user))


# --- multipart with a size limit ---------------------------------------------------------------


async def read_form(request: Request, limit: int) -> FormData:
    """Parse a multipart body, answering 413 as soon as it is over ``limit`` bytes (by its
    Content-Length, or while it streams in) instead of spooling all of it first."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "expected_multipart", "send the upload as multipart/form-data")
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=8)
    try:
        return await parser.parse()
    except MultiPartException as error:
        raise ApiError(400, "invalid_multipart", f"the multipart body could not be read: {error}") from error


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(received, limit)
        yield chunk


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the upload is over the limit of {limit - FORM_OVERHEAD_BYTES} bytes "
                                      f"({size} bytes or more received)")


def _form_file(form: FormData, field: str) -> UploadFile:
    value = form.get(field)
    if not isinstance(value, UploadFile):
        raise ApiError(400, "missing_file", f"send the file as the multipart field {field!r}")
    return value


def _form_int(form: FormData, field: str) -> int:
    value = form.get(field)
    if not isinstance(value, str) or not value.strip().isascii() or not value.strip().isdigit():
        raise ApiError(400, "invalid_field", f"the multipart field {field!r} must be a whole number, got {value!r}"[:300])
    if len(value.strip()) > 19 or int(value) > MAX_ID:
        raise ApiError(404, "not_found", f"no {field.removesuffix('_id')} with id {value.strip()[:40]}")
    return int(value)
