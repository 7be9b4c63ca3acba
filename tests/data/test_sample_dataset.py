import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import soundfile

from moksori.data.readers import read_dataset
from moksori.data.sample_dataset import choose_prompts, make_sample_dataset
from moksori.espeak import EspeakError

PROMPTS = [
    "오늘은 날씨가 맑습니다.",
    "내일 3시에 만나요.",
    "커피 한 잔 주세요.",
    "이 책은 정말 재미있어요.",
    "지하철역까지 걸어서 가요.",
    "고양이가 창문 밖을 봅니다.",
    "저녁에 비가 올 것 같아요.",
]


def test_sample_dataset_is_a_readable_ljspeech_folder(tmp_path):
    out = make_sample_dataset(tmp_path / "ko", n=6, seed=1, prompts=PROMPTS, workers=2, progress=False)
    utterances = read_dataset(out)
    assert len(utterances) == 6
    assert len({u.text for u in utterances}) == 6
    assert {u.text for u in utterances} <= set(PROMPTS)
    lines = (out / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert all(line.count("|") == 2 and line.split("|")[1] == line.split("|")[2] for line in lines)
    for utterance in utterances:
        info = soundfile.info(str(utterance.audio_path))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        wave, _ = soundfile.read(str(utterance.audio_path))
        assert 0.5 < wave.size / 22050 < 8.0
        assert np.sqrt(np.mean(wave**2)) > 0.01


def test_same_seed_same_prompts_and_rerun_reuses_clips(tmp_path):
    out = make_sample_dataset(tmp_path / "a", n=4, seed=7, prompts=PROMPTS, workers=1, progress=False)
    first = (out / "metadata.csv").read_text(encoding="utf-8")
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "wavs").iterdir()}
    make_sample_dataset(out, n=4, seed=7, prompts=PROMPTS, workers=1, progress=False)
    assert (out / "metadata.csv").read_text(encoding="utf-8") == first
    assert {p.name: p.stat().st_mtime_ns for p in (out / "wavs").iterdir()} == stamps
    assert choose_prompts("ko", 4, seed=8, prompts=PROMPTS) != choose_prompts("ko", 4, seed=7, prompts=PROMPTS)


def test_builtin_prompts_and_extra_prompt_files(tmp_path):
    extra = tmp_path / "extra.tsv"
    extra.write_text("추가 문장 하나입니다.\t11\n추가 문장 둘입니다.\t10\n", encoding="utf-8")
    builtin = choose_prompts("ko", 5, seed=0)
    assert len(set(builtin)) == 5
    pool = choose_prompts("ko", 2, seed=0, prompts=[], extra_prompt_files=[extra])
    assert sorted(pool) == ["추가 문장 둘입니다.", "추가 문장 하나입니다."]
    with pytest.raises(ValueError, match="only 2 distinct prompts"):
        choose_prompts("ko", 3, prompts=[], extra_prompt_files=[extra])


def test_english_sample_with_a_voice_variant(tmp_path):
    out = make_sample_dataset(
        tmp_path / "en", language="en", n=2, voice="en-us+f3",
        prompts=["The quick brown fox jumps.", "A second short sentence."], progress=False,
    )  # fmt: skip
    assert (out / "voice.txt").read_text().strip() == "en-us+f3"
    assert [u.id for u in read_dataset(out)] == ["en00001", "en00002"]


def _dies_once(job):
    # The first worker to reach this clip dies (as a crash in libespeak-ng or the OOM killer ends it).
    import os
    import signal

    from moksori.data import sample_dataset

    marker = Path(job.wav_path).with_suffix(".died")
    if job.utt_id.endswith("2") and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return sample_dataset._real_synthesize_job(job)


def _always_dies(job):
    import os
    import signal

    if job.utt_id.endswith("3"):
        os.kill(os.getpid(), signal.SIGKILL)
    from moksori.data import sample_dataset

    return sample_dataset._real_synthesize_job(job)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="patches a forked worker")
def test_a_worker_that_dies_once_is_replaced_and_the_dataset_is_complete(tmp_path, monkeypatch):
    from moksori.data import sample_dataset

    monkeypatch.setattr(sample_dataset, "_real_synthesize_job", sample_dataset._synthesize_job, raising=False)
    monkeypatch.setattr(sample_dataset, "_synthesize_job", _dies_once)
    out = make_sample_dataset(tmp_path / "ko", n=6, seed=1, prompts=PROMPTS, workers=2, progress=False)
    assert len(read_dataset(out)) == 6
    assert all((out / "wavs" / f"ko{i:05d}.wav").is_file() for i in range(1, 7))
    assert (out / "wavs" / "ko00002.died").exists()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="patches a forked worker")
def test_a_clip_that_kills_every_worker_is_named_instead_of_hanging(tmp_path, monkeypatch):
    from moksori.data import sample_dataset

    monkeypatch.setattr(sample_dataset, "_real_synthesize_job", sample_dataset._synthesize_job, raising=False)
    monkeypatch.setattr(sample_dataset, "_synthesize_job", _always_dies)
    with pytest.raises(EspeakError, match=r"died .* 2 times; \d+ clips were not made, e\.g\. ko00003"):
        make_sample_dataset(tmp_path / "ko", n=6, seed=1, prompts=PROMPTS, workers=2, progress=False)
    assert not (tmp_path / "ko" / "metadata.csv").exists()
