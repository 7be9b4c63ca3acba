"""A small ctypes wrapper over libespeak-ng, as shipped by the ``espeakng-loader`` package.

Used to make sample datasets for tests, benchmarks and the demo (no recordings needed), and by
the Korean front end for English words no dictionary knows (their phonemes, by espeak's
letter-to-sound rules).

espeak-ng keeps global state and is not thread-safe, so every call goes through one
lock, and the library is initialised once per process. A fork waits for that lock, so
a child never inherits the library halfway through another thread's call (such a child
hung). The child then goes on with the engine it inherited: calling espeak_Initialize a
second time on an initialised library crashes now and then.
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

__all__ = ["EspeakError", "default_voice", "native_sample_rate", "phonemes", "synthesize"]

# espeak_AUDIO_OUTPUT: synthesise into the callback, return when done.
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
# espeak_PARAMETER
_RATE = 1
_PITCH = 3
# espeak_POSITION_TYPE
_POS_CHARACTER = 1
# espeak_Synth flags
_CHARS_UTF8 = 1

_EE_OK = 0

_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_DEFAULT_VOICES = {"ko": "ko", "en": "en-us"}


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded, initialised, or asked to speak."""


class _Engine:
    """The per-process libespeak-ng handle and the samples of the current utterance."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        self._declare_functions()
        data_path = espeakng_loader.get_data_path().encode()
        sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if sample_rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {sample_rate})")
        self.sample_rate = int(sample_rate)
        self.chunks: list[np.ndarray] = []
        # Kept as an attribute: ctypes must keep the callback object alive.
        self.callback = _CALLBACK_TYPE(self._collect)
        self.lib.espeak_SetSynthCallback(self.callback)
        self.voice = ""

    def _declare_functions(self) -> None:
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK_TYPE]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_GetParameter.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.espeak_GetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p

    def _collect(self, samples, count, _events) -> int:
        if count > 0 and samples:
            self.chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0 = go on synthesising

    def set_voice(self, voice: str) -> None:
        if voice == self.voice:
            return
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakError(f"espeak-ng has no voice {voice!r}")
        self.voice = voice

    def set_parameter(self, parameter: int, value: int) -> None:
        if self.lib.espeak_SetParameter(parameter, int(value), 0) != _EE_OK:
            raise EspeakError(f"espeak_SetParameter({parameter}, {value}) failed")

    def phonemes(self, text: str) -> list[str]:
        """espeak's ASCII phoneme names for ``text``, clause by clause, space-separated inside."""
        data = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        position = ctypes.c_void_p(ctypes.addressof(data))
        clauses = []
        while position.value:
            # textmode 1: UTF-8; phonememode: ASCII names, ' ' between phonemes (bits 8-23).
            clause = self.lib.espeak_TextToPhonemes(ctypes.byref(position), _CHARS_UTF8, ord(" ") << 8)
            if clause:
                clauses.append(clause.decode("ascii", errors="replace"))
        return clauses

    def speak(self, text: str) -> np.ndarray:
        data = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(data, len(data))
        self.chunks = []
        status = self.lib.espeak_Synth(buffer, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed with status {status} for {text[:60]!r}")
        self.lib.espeak_Synchronize()
        samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        self.chunks = []
        return samples


_lock = threading.Lock()
_engine: _Engine | None = None
# espeak's own defaults, read once after initialisation, restored when a call gives None.
_defaults: dict[int, int] = {}


def _hold_for_fork() -> None:
    _lock.acquire()


def _release_after_fork() -> None:
    _lock.release()


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(before=_hold_for_fork, after_in_parent=_release_after_fork, after_in_child=_reset_after_fork)


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
        for parameter in (_RATE, _PITCH):
            _defaults[parameter] = _engine.lib.espeak_GetParameter(parameter, 0)
    return _engine


def default_voice(language: str) -> str:
    """The espeak-ng voice used for a language code ("ko" → "ko", "en" → "en-us")."""
    return _DEFAULT_VOICES.get(language, language)


def native_sample_rate() -> int:
    """The sample rate espeak-ng synthesises at (22050 Hz for its standard voices)."""
    with _lock:
        return _get_engine().sample_rate


def synthesize(
    text: str, voice: str = "ko", rate: int | None = None, pitch: int | None = None
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with an espeak-ng voice; return (float32 mono samples in [-1, 1], sample rate).

    ``voice`` is an espeak voice name, optionally with a variant ("ko+f3", "en-us+m2").
    ``rate`` is in words per minute (espeak's default is 175, range 80–450) and ``pitch``
    is 0–100 (default 50); ``None`` keeps espeak's default.
    """
    if not text.strip():
        raise ValueError("cannot synthesise empty text")
    with _lock:
        engine = _get_engine()
        engine.set_voice(voice)
        engine.set_parameter(_RATE, _defaults[_RATE] if rate is None else rate)
        engine.set_parameter(_PITCH, _defaults[_PITCH] if pitch is None else pitch)
        samples = engine.speak(text)
        sample_rate = engine.sample_rate
    return samples.astype(np.float32) / 32768.0, sample_rate


def phonemes(text: str, voice: str = "en-us") -> list[str]:
    """espeak-ng's phonemes for ``text`` (ASCII phoneme names with stress marks ' and ,), one
    string per clause: e.g. ``phonemes("Tacotron") == ["t 'a k @ t r ,0 n"]``."""
    if not text.strip():
        return []
    with _lock:
        engine = _get_engine()
        engine.set_voice(voice)
        return engine.phonemes(text)
