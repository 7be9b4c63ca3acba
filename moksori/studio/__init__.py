"""The recording studio's logic: voices, prompt sets, takes and their quality verdicts,
progress, LJSpeech export (:mod:`moksori.studio.service`) and background training jobs
(:mod:`moksori.studio.jobs`, imported on its own: it is also the training child's entry point).

The HTTP side (pages and JSON API) is :mod:`moksori.server.studio`.
"""

from moksori.studio.service import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    Progress,
    StudioError,
    StudioService,
    StudioSettings,
    TakeResult,
    TooLargeError,
)

__all__ = [
    "ConflictError",
    "InvalidInputError",
    "NotFoundError",
    "Progress",
    "StudioError",
    "StudioService",
    "StudioSettings",
    "TakeResult",
    "TooLargeError",
]
