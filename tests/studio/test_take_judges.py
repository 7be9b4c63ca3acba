"""The background take judges: the recogniser's script match (Korean and English) and DNSMOS
noise warnings as take checks, off with a note without the extra, and not slowing an upload."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from moksori.audio import QualityThresholds
from moksori.evaluation.judges import DnsmosScores
from moksori.studio import judging
from moksori.studio.judging import BackgroundJudges, TakeJudges
from moksori.studio.takes import make_context

RATE = 22050


class Heard:
    """A recogniser that 'hears' a fixed transcript, counting its calls."""

    def __init__(self, transcript: str, gate: threading.Event | None = None) -> None:
        self.transcript, self.gate, self.calls = transcript, gate, 0

    def transcribe(self, wave: np.ndarray, sample_rate: int, language: str) -> str:
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(30), "the test never released the judge"
        return self.transcript


def scores(sig: float = 3.5, bak: float = 4.1) -> object:
    return lambda wave, rate: DnsmosScores(sig=sig, bak=bak, ovrl=3.2, p808=3.8)


def context(text: str, language: str, wave: np.ndarray | None = None, rate: int = RATE):
    if wave is None:
        wave = 0.1 * np.sin(np.linspace(0, 2000, RATE)).astype(np.float32)
    return make_context(wave, rate, text, language, QualityThresholds())


def codes(judges: TakeJudges, take) -> list[str]:
    return [p.code for p in judges.judge(take).problems]


def test_script_match_korean_and_english():
    korean = context("오후 3시에 만나요.", "ko")
    assert codes(TakeJudges(Heard("오후 세 시에 만나요"), scores()), korean) == []  # 3시 = 세 시
    mismatch = TakeJudges(Heard("오늘은 집에 갑니다"), scores()).judge(korean)
    assert [p.code for p in mismatch.problems] == ["words_mismatch"]
    assert "오늘은 집에 갑니다" in mismatch.problems[0].message and mismatch.cer > 0.25
    english = context("The train leaves at 9.", "en")
    assert codes(TakeJudges(Heard("The train leaves at nine."), scores()), english) == []
    assert codes(TakeJudges(Heard("The train leaves."), scores()), english) == ["words_mismatch"]
    assert codes(TakeJudges(Heard(""), scores()), english) == ["words_mismatch"]


def test_noise_warnings_from_dnsmos():
    take = context("The train leaves at nine.", "en")
    right = Heard("The train leaves at nine.")
    assert codes(TakeJudges(right, scores(bak=2.2)), take) == ["noisy_background"]
    assert codes(TakeJudges(right, scores(sig=2.0)), take) == ["poor_signal"]
    outcome = TakeJudges(right, scores()).judge(take).to_dict()
    assert outcome["status"] == "done" and outcome["dnsmos"]["bak"] == pytest.approx(4.1)


def test_judges_are_off_with_a_note_naming_the_extra(monkeypatch):
    monkeypatch.setattr(judging, "judges_unavailable_reason",
                        lambda: "the speech recogniser is not installed; install the judges extra: "
                                "pip install 'moksori[judges]'")
    absent = BackgroundJudges()
    assert not absent.active and absent.initial_state()["status"] == "off"
    assert "moksori[judges]" in absent.initial_state()["note"]
    assert absent.submit(context("하나 둘 셋 넷.", "ko"), lambda state: None) is None
    assert "turned off" in BackgroundJudges(enabled=False).initial_state()["note"]


def test_real_judges_on_joe_takes():
    pytest.importorskip("faster_whisper", reason="needs the judges extra (pip install 'moksori[judges]')")
    pytest.importorskip("piper", reason="needs the naturalvoice extra (pip install 'moksori[naturalvoice]')")
    from moksori.data.natural_voice import synthesize_joe

    text = "Please close the window before the rain starts."
    wave, rate = synthesize_joe(text)
    pad = np.zeros(int(0.2 * rate), np.float32)
    wave = np.concatenate([pad, wave, pad])
    noisy = np.clip(wave + 0.05 * np.random.default_rng(0).standard_normal(wave.size).astype(np.float32), -1, 1)
    judges = TakeJudges()
    clean = judges.judge(context(text, "en", wave, rate))
    assert clean.problems == [], clean
    wrong = judges.judge(context("We walked along the river after lunch.", "en", noisy, rate))
    assert {p.code for p in wrong.problems} >= {"words_mismatch", "noisy_background"}


def test_upload_answers_before_the_judges_and_their_problems_join_the_take(make_site, tools, spoken):
    site = make_site(judges=True)
    client = site.client()
    gate = threading.Event()
    heard = Heard("전혀 다른 문장입니다", gate)
    service = client.app.state.studio.service
    service.background_judges = BackgroundJudges(TakeJudges(heard, scores(bak=2.0)))
    voice = tools.new_voice(client)
    text, wave = spoken[0]
    prompt = tools.prompt_ids(client, tools.builtin_ko(client))[text]

    response = tools.upload(client, voice, prompt, tools.wav_file(wave))  # the judge is still held
    assert response.status_code == 201, response.text
    take = response.json()["recording"]
    assert take["judges"] == {"status": "pending"} and take["verdict"] == "ok" and take["kept"]
    gate.set()
    assert service.background_judges.wait_idle(30)
    judged = client.get(f"/api/studio/recordings/{take['id']}").json()
    assert judged["judges"]["status"] == "done" and judged["judges"]["transcript"] == "전혀 다른 문장입니다"
    assert [p["code"] for p in judged["problems"]] == ["words_mismatch", "noisy_background"]
    assert judged["verdict"] == "words_mismatch,noisy_background" and judged["kept"]  # flagged, still the user's call
    assert client.get("/api/studio/recordings/999999").status_code == 404


def test_judges_off_in_the_studio_settings(make_site, tools, spoken):
    client = make_site().client()  # test sites turn the judges off
    voice = tools.new_voice(client)
    (upload,) = tools.upload_spoken(client, voice, spoken, 1)
    take = upload["recording"]
    assert take["judges"]["status"] == "off" and "MOKSORI_STUDIO_JUDGES" in take["judges"]["note"]


class LostJudges(BackgroundJudges):
    """Judges that take a take and never answer: the server process stopped while they worked."""

    def __init__(self) -> None:
        super().__init__(TakeJudges(Heard("unused"), scores()))
        self.submitted = 0

    def submit(self, context, done):
        from concurrent.futures import Future

        self.submitted += 1
        return Future()  # never run


def test_a_take_whose_judges_were_lost_in_a_restart_is_judged_again(make_site, tools, spoken):
    """A server stopped while its judges worked left the take "pending" for good: the page said
    "Checking…" forever and asking again did not help. The restarted server hands such a take to
    its judges when it is asked for; a take still with this server's judges is not handed twice."""
    site = make_site(judges=True)
    first = site.client()
    lost = LostJudges()
    first.app.state.studio.service.background_judges = lost
    voice = tools.new_voice(first)
    (upload,) = tools.upload_spoken(first, voice, spoken, 1)
    take = upload["recording"]
    assert take["judges"] == {"status": "pending"}
    assert first.get(f"/api/studio/recordings/{take['id']}").json()["judges"] == {"status": "pending"}
    assert lost.submitted == 1  # still with this server's judges: not handed again
    site.stop(first)

    second = site.client()  # the restart
    service = second.app.state.studio.service
    service.background_judges = BackgroundJudges(TakeJudges(Heard("전혀 다른 문장입니다"), scores()))
    assert second.get(f"/api/studio/recordings/{take['id']}").status_code == 200
    assert service.background_judges.wait_idle(30)
    judged = second.get(f"/api/studio/recordings/{take['id']}").json()
    assert judged["judges"]["status"] == "done" and judged["judges"]["transcript"] == "전혀 다른 문장입니다"
    assert [p["code"] for p in judged["problems"]] == ["words_mismatch"]
