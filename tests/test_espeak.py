import threading

import numpy as np
import pytest

from moksori.espeak import EspeakError, default_voice, native_sample_rate, synthesize


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))


def dominant_frequency(wave: np.ndarray, sample_rate: int = 22050) -> float:
    """Median pitch estimate: the autocorrelation peak between 60 and 500 Hz, over voiced frames."""
    frame = 1024
    estimates = []
    for start in range(0, wave.size - frame, frame // 2):
        chunk = wave[start : start + frame].astype(np.float64)
        if rms(chunk) < 0.02:
            continue
        corr = np.correlate(chunk, chunk, mode="full")[frame - 1 :]
        low, high = sample_rate // 500, sample_rate // 60
        estimates.append(sample_rate / (low + int(np.argmax(corr[low:high]))))
    return float(np.median(estimates))


@pytest.mark.parametrize(("text", "voice"), [("오늘은 날씨가 참 좋네요.", "ko"), ("The weather is fine today.", "en-us")])
def test_synthesize_gives_speech_at_22050(text, voice):
    wave, sample_rate = synthesize(text, voice=voice)
    assert sample_rate == 22050 == native_sample_rate()
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.8 < wave.size / sample_rate < 6.0
    assert rms(wave) > 0.01
    assert np.abs(wave).max() <= 1.0


def test_rate_pitch_and_variant_change_the_audio():
    text = "오늘은 날씨가 참 좋네요"
    base, _ = synthesize(text, "ko")
    slow, _ = synthesize(text, "ko", rate=100)
    assert slow.size > base.size * 1.3
    high, _ = synthesize(text, "ko", pitch=90)
    low, _ = synthesize(text, "ko", pitch=30)
    assert dominant_frequency(high) > dominant_frequency(low) * 1.3
    female = dominant_frequency(synthesize(text, "ko+f3")[0])
    assert female > dominant_frequency(base) * 1.2
    # Defaults come back when rate/pitch are not given again (espeak adds a little jitter).
    again, _ = synthesize(text, "ko")
    assert abs(again.size - base.size) < 0.02 * base.size


def test_threads_share_the_engine_safely():
    expected, _ = synthesize("하나 둘 셋", "ko")
    results = []

    def speak():
        results.append(synthesize("하나 둘 셋", "ko")[0])

    threads = [threading.Thread(target=speak) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for result in results:
        assert abs(result.size - expected.size) < 0.02 * expected.size
        assert rms(result) > 0.01


def test_errors_and_defaults():
    assert default_voice("ko") == "ko" and default_voice("en") == "en-us"
    with pytest.raises(EspeakError, match="no voice"):
        synthesize("hello", voice="no-such-voice")
    with pytest.raises(ValueError):
        synthesize("   ")


def _speak_in_child(queue) -> None:
    wave, sample_rate = synthesize("포크한 자식 프로세스에서 말합니다.", voice="ko")
    queue.put(wave.size / sample_rate)


def test_a_fork_during_another_threads_synthesis_gets_a_working_engine():
    # A child forked while a thread was inside libespeak-ng used to hang: fork now waits for it.
    import multiprocessing
    import threading

    stop = threading.Event()

    def keep_speaking() -> None:
        while not stop.is_set():
            synthesize("다른 스레드가 계속 말하고 있습니다.", voice="ko")

    speaker = threading.Thread(target=keep_speaking, daemon=True)
    speaker.start()
    context = multiprocessing.get_context("fork")
    try:
        for _ in range(5):
            queue = context.Queue()
            child = context.Process(target=_speak_in_child, args=(queue,))
            child.start()
            child.join(timeout=30)
            assert child.exitcode == 0, "the forked child hung or failed"
            assert queue.get(timeout=5) > 1.0
    finally:
        stop.set()
        speaker.join()
