"""The server's own web pages besides the studio: ``GET /`` (a landing page linking the studio,
the voice page and the API docs), ``/docs`` and ``/redoc`` (Swagger UI and ReDoc, served from
the package), ``GET /listen`` (the voice page: every voice the caller may
use, its card, a text box, play, download), their static files, and ``GET /voices/{voice}/card``,
the JSON the voice page reads.

The voice page calls the same API as any client (``/voices``, ``/voices/{voice}/card``,
``POST /synthesize`` streamed): an API key typed into the page goes into its ``Authorization``
header, so keys, private voices and rate limits apply exactly as they do to the API. The card
names the controls a voice's models read (their inference adapters' ``knobs``), so the page
shows only those and knows nothing about model families itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from moksori.server.auth import Principal, rate_limited
from moksori.server.errors import ApiError
from moksori.server.state import ServerState, server_state
from moksori.server.style import MAX_SIGMA, STYLE_DIR
from moksori.server.voices import VoiceInfo

router = APIRouter()

STATIC_DIR = Path(__file__).resolve().parent / "static" / "pages"
STATIC_FILES = {"listen.js": "text/javascript", "pages.css": "text/css"}
# The same policy as the studio's pages: nothing from anywhere but this server, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
LISTEN_PATH = "/listen"

State = Annotated[ServerState, Depends(server_state)]
LimitedCaller = Annotated[Principal, Depends(rate_limited)]


@router.get("/", include_in_schema=False)
async def landing(request: Request) -> HTMLResponse:
    studio = getattr(request.app.state, "studio", None)
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    if studio is None:  # no database: say so instead of linking a page that cannot work
        html = html.replace("<!--studio-off-->", '<p class="hint">The recording studio is off on this server '
                            "(it needs a database: start the server with a db_url).</p>")
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get(LISTEN_PATH, include_in_schema=False)
async def listen_page() -> HTMLResponse:
    return HTMLResponse((STATIC_DIR / "listen.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)


@router.get("/pages/static/{name}", include_in_schema=False)
async def page_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", f"no page file {name!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=PAGE_HEADERS)


# --- API docs ---------------------------------------------------------------------------------
# Swagger UI and ReDoc from the fastapi-offline package's copies (MIT/Apache-2.0 licensed dist
# files), under a policy that lets nothing load from elsewhere: ReDoc's footer logo would
# otherwise come from its CDN. Their pages hold an inline start-up script.
DOCS_STATIC = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
               "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}
DOCS_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
}


def _docs_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    from fastapi.openapi.docs import get_swagger_ui_html

    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}/docs/static/swagger-ui-bundle.js", swagger_css_url=f"{root}/docs/static/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/static/favicon.png", swagger_ui_parameters={"validatorUrl": None},
    )
    return HTMLResponse(page.body, headers=DOCS_HEADERS)


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    from fastapi.openapi.docs import get_redoc_html

    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}/docs/static/redoc.standalone.js", redoc_favicon_url=f"{root}/docs/static/favicon.png",
        with_google_fonts=False,
    )
    return HTMLResponse(page.body, headers=DOCS_HEADERS)


@router.get("/docs/static/{name}", include_in_schema=False)
async def docs_static(name: str) -> FileResponse:
    media_type = DOCS_STATIC.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", f"no docs file {name!r}")
    return FileResponse(_docs_dir() / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/voices/{voice}/card", summary="A voice's card: models, data, training, evaluation and its controls")
async def voice_card(
    voice: Annotated[str, PathParam(max_length=200)], principal: LimitedCaller, state: State
) -> dict[str, Any]:
    from moksori.server.tts import _find_voice

    info = await _find_voice(state, voice, principal)
    card = await run_in_threadpool(card_of, info)
    card["suggested_vocoder"] = await run_in_threadpool(_suggested_vocoder, info, card)
    return card


def card_of(info: VoiceInfo) -> dict[str, Any]:
    """What voice.json says about a voice (no weights are loaded), and the controls it takes."""
    from moksori.synthesis import read_voice_json

    data = read_voice_json(info.path)
    acoustic, vocoder = data["acoustic"], data.get("vocoder") or {}
    training = data.get("training") or {}
    vocoder_name = vocoder.get("model_name") or vocoder.get("name") or "griffin_lim"
    return {
        **info.public_dict(),
        "acoustic": {"model": acoustic.get("model_name"), "parameters": _size(acoustic)},
        "vocoder": {"model": vocoder_name, "trained": "model_name" in vocoder, "parameters": _size(vocoder)},
        "steps": {role: (training.get(role) or {}).get("step") for role in ("acoustic", "vocoder")},
        "data_minutes": _data_minutes(data),
        "evaluation": _figures(data.get("evaluation") or {}),
        "controls": controls_of(info.path, acoustic.get("model_name"), vocoder.get("model_name")),
    }


def controls_of(path: Path, acoustic: str | None, vocoder: str | None) -> dict[str, Any]:
    """The request fields that change this voice's audio, with their ranges, from the knobs its
    models' inference adapters declare."""
    from moksori.server.tts import MAX_DENOISE, MAX_VOCODER_SIGMA
    from moksori.synthesis.synthesizer import MAX_SPEED, MIN_SPEED

    controls: dict[str, Any] = {}
    acoustic_knobs, vocoder_knobs = _knobs(acoustic), _knobs(vocoder)
    if "length_scale" in acoustic_knobs:  # Tacotron2 and Flowtron set their own pace
        controls["speed"] = {"min": MIN_SPEED, "max": MAX_SPEED, "default": 1.0}
    if "noise_scale" in acoustic_knobs:
        controls["sigma"] = {"min": 0.0, "max": MAX_SIGMA, "default": None,
                             "help": "sampling temperature of the acoustic model (lower: steadier, flatter)"}
    if "style" in acoustic_knobs:
        folder = path / STYLE_DIR
        clips = sorted(p.stem for p in folder.glob("*.wav")) if folder.is_dir() else []
        controls["style"] = {"clips": clips, "strength": {"min": 0.0, "max": 1.0, "default": 1.0}}
    if "sigma" in vocoder_knobs:
        controls["vocoder_sigma"] = {"min": 0.0, "max": MAX_VOCODER_SIGMA, "default": None,
                                     "help": "sampling temperature of the vocoder"}
    if "denoise" in vocoder_knobs:
        controls["denoise"] = {"min": 0.0, "max": MAX_DENOISE, "default": None, "help": "denoiser strength"}
    return controls


def _knobs(family_name: str | None) -> tuple[str, ...]:
    from moksori.models import registry

    if not family_name:
        return ()
    try:
        adapter = registry.get(family_name).adapter
    except ValueError:
        return ()
    return tuple(getattr(adapter, "knobs", ()))


def _size(section: dict[str, Any]) -> str | None:
    config = section.get("model_config") or {}
    hidden = config.get("hidden_channels") or config.get("dim") or config.get("upsample_initial_channel")
    return f"width {hidden}" if hidden else None


def _data_minutes(data: dict[str, Any]) -> float | None:
    """Minutes of recordings the voice was trained (or fine-tuned) on, where voice.json says."""
    finetune = ((data.get("training") or {}).get("finetune") or {}).get("dataset") or {}
    if finetune.get("minutes") is not None:
        return float(finetune["minutes"])
    source = data.get("data") or {}
    if source.get("minutes") is not None:
        return float(source["minutes"])
    if source.get("hours") is not None:
        return round(float(source["hours"]) * 60.0, 1)
    return None


def _figures(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation's numbers (nested ones flattened one level: ``rtf_2_threads.total``)."""
    figures: dict[str, Any] = {}
    for key, value in evaluation.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            figures[key] = value
        elif isinstance(value, dict):
            figures.update({f"{key}.{k}": v for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)})
    return figures


def _suggested_vocoder(info: VoiceInfo, card: dict[str, Any]) -> dict[str, Any] | None:
    """For a Griffin-Lim voice: the shipped voice's vocoder, which a request borrows with
    ``vocoder_voice`` (when its mel parameters match)."""
    if card["vocoder"]["trained"]:
        return None
    import moksori.voices as shipped
    from moksori.synthesis import read_voice_json
    from moksori.synthesis.bundle import VoiceError, check_vocoder_fits

    path = shipped.default_voice_path()
    if not (path / "voice.json").is_file() or path.resolve() == info.path.resolve():
        return None
    lender = read_voice_json(path)
    try:
        check_vocoder_fits(read_voice_json(info.path), lender, "the shipped voice")
    except VoiceError:
        return None
    return {"voice": shipped.DEFAULT_VOICE_NAME, "model": lender["vocoder"]["model_name"], "field": "vocoder_voice"}
