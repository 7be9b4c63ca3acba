import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from moksori.audio import load_audio, mel_spectrogram
from moksori.espeak import synthesize
from moksori.data.manifest import read_jsonl
from moksori.data.preprocess import PreprocessConfig, preprocess_dataset, split_train_val
from moksori.data.report import PreprocessReport, format_report

SR = 22050
GOOD = {
    "ko": [
        "오늘은 날씨가 참 맑습니다.",
        "내일 오후 3시에 역 앞에서 만나요.",
        "커피 두 잔하고 케이크 하나 주세요.",
        "이 책은 생각보다 훨씬 재미있어요.",
        "고양이가 창문 밖을 조용히 바라봅니다.",
        "버스는 10분마다 한 대씩 옵니다.",
    ],
    "en": [
        "The weather is clear today.",
        "Meet me at the station at 3 pm.",
        "Two coffees and one cake, please.",
        "This book is more fun than I thought.",
        "The cat quietly looks out of the window.",
        "The bus comes every 10 minutes.",
    ],
}
VOICE = {"ko": "ko", "en": "en-us"}
# id → expected reason of every deliberately bad item
BAD = {
    "missing": "missing",
    "textfile": "unreadable",
    "zeros": "silent",
    "square": "clipped",
    "long40": "too_long",
    "emoji": "unreadable_characters",
    "hanja": "unreadable_characters",
    "rushed": "text_duration_mismatch",
    "notext": "empty_text",
    "good0": "duplicate_id",
    "metadata.csv:17": "malformed_line",
}


def write_wav(path: Path, wave: np.ndarray) -> None:
    soundfile.write(str(path), wave, SR, subtype="PCM_16")


def build_dataset(root: Path, language: str) -> Path:
    wavs = root / "wavs"
    wavs.mkdir(parents=True)
    rows = []
    speech = {}
    for index, text in enumerate(GOOD[language]):
        wave, rate = synthesize(text, VOICE[language])
        assert rate == SR
        # quiet, with some silence around it: trimming and loudness have work to do
        wave = np.concatenate([np.zeros(SR // 2), 0.3 * wave, np.zeros(SR // 3)]).astype(np.float32)
        write_wav(wavs / f"good{index}.wav", wave)
        speech[index] = wave
        rows.append(f"good{index}|{text}|{text}")
    text0 = GOOD[language][0]
    (wavs / "textfile.wav").write_text("this is not audio", encoding="utf-8")
    write_wav(wavs / "zeros.wav", np.zeros(2 * SR, dtype=np.float32))
    t = np.arange(2 * SR) / SR
    write_wav(wavs / "square.wav", np.sign(np.sin(2 * np.pi * 150 * t)).astype(np.float32))
    repeats = 40 * SR // speech[0].size + 1
    write_wav(wavs / "long40.wav", np.tile(speech[0], repeats))
    for name in ("emoji", "hanja", "notext"):
        write_wav(wavs / f"{name}.wav", speech[1])
    start = np.flatnonzero(np.abs(speech[2]) > 0.01)[0]
    write_wav(wavs / "rushed.wav", speech[2][start : start + SR // 2])
    rows += [
        f"missing|{text0}|{text0}",
        f"textfile|{text0}|{text0}",
        f"zeros|{text0}|{text0}",
        f"square|{text0}|{text0}",
        f"long40|{' '.join([text0] * repeats)}|",
        f"emoji|{GOOD[language][1]} 😀|",
        f"hanja|{GOOD[language][1]} 漢|",
        f"rushed|{'가나다라마바사아자차' * 20 if language == 'ko' else 'abcdefghij' * 20}|",
        "notext||",
        f"good0|{GOOD[language][3]}|",
        "broken line without separators",
    ]
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert rows[16] == "broken line without separators"  # line 17 of the file
    return root


@pytest.fixture(scope="module", params=["ko", "en"])
def run(request, tmp_path_factory):
    language = request.param
    base = tmp_path_factory.mktemp(f"pre_{language}")
    dataset = build_dataset(base / "dataset", language)
    config = PreprocessConfig(language=language, val_fraction=0.2, seed=3)
    report = preprocess_dataset(dataset, base / "out", config, workers=2, progress=False)
    return dataset, base / "out", report, config


def test_every_item_is_kept_or_rejected_with_the_right_reason(run):
    dataset, out, report, _ = run
    manifest = read_jsonl(out / "manifest.jsonl")
    rejected = read_jsonl(out / "rejected.jsonl")
    n_lines = len((dataset / "metadata.csv").read_text(encoding="utf-8").splitlines())
    assert len(manifest) + len(rejected) == n_lines == report.n_input
    assert sorted(r["id"] for r in manifest) == [f"good{i}" for i in range(6)]
    reasons = {r["id"]: r["reason"] for r in rejected}
    assert reasons == BAD, {r["id"]: r["message"] for r in rejected}
    assert all(r["message"] and "audio" in r for r in rejected)
    messages = {r["id"]: r["message"] for r in rejected}
    assert "😀" in messages["emoji"] and "漢" in messages["hanja"]
    assert "metadata.csv:17:" in messages["metadata.csv:17"]
    assert report.rejected_by_reason["unreadable_characters"] == 2
    assert report.n_kept == 6 and report.n_rejected == len(BAD)


def test_cached_mels_match_the_processed_audio(run):
    _, out, _, config = run
    for record in read_jsonl(out / "manifest.jsonl"):
        mel = np.load(out / record["mel"])
        wave = load_audio(out / record["audio"], SR)
        assert mel.dtype == np.float32
        assert mel.shape == (80, record["n_frames"])
        assert wave.size == record["n_samples"]
        assert record["duration_s"] == pytest.approx(wave.size / SR, abs=1e-3)
        expected = mel_spectrogram(wave, SR)
        torch.testing.assert_close(torch.from_numpy(mel), expected)
        # trimmed (0.5 s lead-in and 0.33 s tail were silence) and louder than the 0.3-scaled input
        assert record["quality"]["trim_start_s"] > 0.3
        assert record["duration_s"] < record["quality"]["source_duration_s"] - 0.5
        assert np.abs(wave).max() > 0.3


def test_records_carry_text_and_token_ids(run):
    _, out, _, config = run
    from moksori.text import TextFrontend

    frontend = TextFrontend(config.language)
    for record in read_jsonl(out / "manifest.jsonl"):
        result = frontend.process(record["text"])
        assert record["ids"] == result.ids
        assert record["normalized"] == result.normalized
        assert not any(ch.isdigit() for ch in record["normalized"])
        assert record["speaker"] == ""


def test_split_is_disjoint_and_covers_the_manifest(run):
    _, out, report, _ = run
    train = [r["id"] for r in read_jsonl(out / "train.jsonl")]
    val = [r["id"] for r in read_jsonl(out / "val.jsonl")]
    assert set(train).isdisjoint(val)
    assert sorted(train + val) == sorted(r["id"] for r in read_jsonl(out / "manifest.jsonl"))
    assert len(val) == 1 and (report.n_train, report.n_val) == (5, 1)


def test_config_and_report_files(run):
    _, out, report, config = run
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["mel"]["hop_length"] == 256
    assert saved["text"]["language"] == config.language
    assert PreprocessConfig.from_dict(saved["preprocess"]) == config
    assert saved["speakers"] == [""]
    again = PreprocessReport.from_dict(json.loads((out / "report.json").read_text(encoding="utf-8")))
    assert again == report
    text = (out / "report.txt").read_text(encoding="utf-8")
    assert text.strip() == format_report(report)
    for reason in set(BAD.values()):
        assert reason in text
    assert 0 < report.symbols_seen < report.symbols_total
    assert len(report.unseen_symbols) == report.symbols_total - report.symbols_seen
    assert report.hours_kept * 3600 == pytest.approx(sum(r["duration_s"] for r in read_jsonl(out / "manifest.jsonl")))
    assert report.hours_rejected > 40 / 3600  # the 40 s clip, at least
    assert not list(out.rglob("*.tmp"))


def test_report_names_each_rejected_clip(run):
    # "unreadable 1" alone does not tell a user which of thousands of clips to fix.
    _, out, report, _ = run
    text = (out / "report.txt").read_text(encoding="utf-8")
    for utt_id, reason in BAD.items():
        assert f"  {utt_id}  {reason}: " in text
    assert "textfile.wav" in text  # the message says what is wrong with the file


def test_report_lists_the_first_rejections_and_points_to_the_rest():
    from moksori.data.report import MAX_REPORTED_REJECTIONS, build_report
    from moksori.text import TextFrontend

    rejected = [{"id": f"c{i}", "reason": "missing", "message": "audio file not found", "duration_s": None}
                for i in range(MAX_REPORTED_REJECTIONS + 5)]
    report = build_report(kept=[], rejected=rejected, n_train=0, n_val=0, frontend=TextFrontend("ko"),
                          dataset="d", dataset_format="ljspeech", out_dir="o", elapsed_s=0.0)
    text = format_report(report)
    assert f"first {MAX_REPORTED_REJECTIONS} of {MAX_REPORTED_REJECTIONS + 5}; all in rejected.jsonl" in text
    assert f"  c{MAX_REPORTED_REJECTIONS - 1}  missing" in text and f"  c{MAX_REPORTED_REJECTIONS}  " not in text


def test_rerun_overwrites_consistently(run, tmp_path):
    dataset, _, _, config = run
    out = tmp_path / "out"
    first = preprocess_dataset(dataset, out, config, workers=1, progress=False)
    split = (out / "val.jsonl").read_text(encoding="utf-8")
    lines = (dataset / "metadata.csv").read_text(encoding="utf-8").splitlines()
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    (smaller / "wavs").symlink_to(dataset / "wavs")
    (smaller / "metadata.csv").write_text("\n".join(lines[1:6]) + "\n", encoding="utf-8")
    (out / "mels" / ".good1.npy.abc.tmp").write_bytes(b"half a file")
    second = preprocess_dataset(smaller, out, config, workers=2, progress=False)
    assert (first.n_kept, second.n_kept) == (6, 5)
    assert sorted(p.name for p in (out / "mels").iterdir()) == [f"good{i}.npy" for i in range(1, 6)]
    assert sorted(p.name for p in (out / "wavs").iterdir()) == [f"good{i}.wav" for i in range(1, 6)]
    assert read_jsonl(out / "rejected.jsonl") == []
    third = preprocess_dataset(dataset, out, config, workers=2, progress=False)
    assert (out / "val.jsonl").read_text(encoding="utf-8") == split
    assert third.n_kept == 6


def test_split_is_seeded_and_speaker_stratified():
    records = [{"id": f"{s}{i:03d}", "speaker": s} for s, n in (("a", 60), ("b", 30), ("c", 10)) for i in range(n)]
    train, val = split_train_val(records, val_fraction=0.1, seed=1)
    assert len(val) == 10 and len(train) == 90
    per_speaker = {s: sum(r["speaker"] == s for r in val) for s in "abc"}
    assert per_speaker == {"a": 6, "b": 3, "c": 1}
    assert split_train_val(list(reversed(records)), 0.1, seed=1)[1] == list(reversed(val))
    assert split_train_val(records, 0.1, seed=2)[1] != val
    assert len(split_train_val(records, 0.5, max_val=7)[1]) == 7
    assert split_train_val(records[:1], 0.5) == (records[:1], [])
    single = [{"id": f"u{i:04d}", "speaker": ""} for i in range(110)]
    before = {r["id"] for r in split_train_val(single[:100], 0.1, seed=1)[1]}
    after = {r["id"] for r in split_train_val(single, 0.1, seed=1)[1]}
    assert len(before) == 10 and len(after) == 11 and len(before & after) >= 8  # adding clips moves few
    lone = [{"id": "x", "speaker": "solo"}, *records[:9]]
    assert all(r["speaker"] != "solo" for r in split_train_val(lone, 0.5)[1])


def test_multi_speaker_filelist_with_stereo_44k_audio(tmp_path):
    from moksori.data.dataset import TTSDataset

    lines = []
    for index, text in enumerate(GOOD["ko"]):
        speaker = "minji" if index % 2 else "jun"
        wave, _ = synthesize(text, "ko+f3" if speaker == "minji" else "ko")
        wave_44k = np.interp(np.arange(0, wave.size, 0.5), np.arange(wave.size), wave).astype(np.float32)
        stereo = np.stack([wave_44k, 0.5 * wave_44k], axis=1)
        soundfile.write(str(tmp_path / f"clip{index}.wav"), stereo, 44100, subtype="PCM_16")
        lines.append(f"clip{index}.wav|{text}|{speaker}")
    filelist = tmp_path / "list.txt"
    filelist.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = PreprocessConfig(val_fraction=0.34, seed=0)
    report = preprocess_dataset(filelist, tmp_path / "out", config, workers=2, progress=False)
    assert report.n_kept == 6 and report.speakers == {"jun": 3, "minji": 3}
    assert json.loads((tmp_path / "out" / "config.json").read_text())["speakers"] == ["jun", "minji"]
    val = read_jsonl(tmp_path / "out" / "val.jsonl")
    assert sorted(r["speaker"] for r in val) == ["jun", "minji"]
    info = soundfile.info(str(tmp_path / "out" / "wavs" / "clip0.wav"))
    assert (info.samplerate, info.channels) == (22050, 1)
    train = TTSDataset(tmp_path / "out", "train")
    assert {item["speaker"] for item in train} == {0, 1}
    assert all(train[i]["speaker"] == ["jun", "minji"].index(r["speaker"]) for i, r in enumerate(train.records))


def test_refuses_to_write_over_the_dataset_or_foreign_files(tmp_path):
    dataset = tmp_path / "lj"
    (dataset / "wavs").mkdir(parents=True)
    wave, _ = synthesize(GOOD["ko"][0], "ko")
    soundfile.write(str(dataset / "wavs" / "a.wav"), wave, SR, subtype="PCM_16")
    (dataset / "metadata.csv").write_text(f"a|{GOOD['ko'][0]}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a moksori preprocess folder"):
        preprocess_dataset(dataset, dataset, workers=1, progress=False)
    (dataset / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="overwrite the dataset's own audio"):
        preprocess_dataset(dataset, dataset, workers=1, progress=False)
    assert sorted(p.name for p in (dataset / "wavs").iterdir()) == ["a.wav"]


def test_an_hour_long_source_file_is_refused_before_it_is_decoded(tmp_path):
    # An hour-long session file among the clips took 2.5 GB (decoded, resampled, analysed)
    # only to be rejected as too_long; a few of them in parallel workers exhaust the memory.
    import tracemalloc

    from moksori.audio import QualityThresholds

    dataset = tmp_path / "dataset"
    (dataset / "wavs").mkdir(parents=True)
    rate = 48000
    with soundfile.SoundFile(str(dataset / "wavs" / "session.wav"), "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(10):  # 10 minutes, written a minute at a time
            handle.write(np.full(60 * rate, 1000, dtype=np.int16))
    (dataset / "metadata.csv").write_text("session|오늘은 날씨가 참 맑습니다.\n", encoding="utf-8")
    config = PreprocessConfig(quality=QualityThresholds(max_duration_s=5.0))
    tracemalloc.start()
    try:
        report = preprocess_dataset(dataset, tmp_path / "out", config, workers=1, progress=False)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.rejected_by_reason == {"too_long": 1}
    (rejected,) = read_jsonl(tmp_path / "out" / "rejected.jsonl")
    assert "600.0 s" in rejected["message"] and "session.wav" in rejected["message"]
    assert rejected["duration_s"] == pytest.approx(600.0) and report.hours_rejected == pytest.approx(600 / 3600)
    assert peak_bytes < 80e6  # decoding the file is 115 MB of float32 alone, and 53 MB more resampled


def test_a_clip_that_kills_its_worker_is_rejected_by_name_and_the_rest_go_on(run, tmp_path, monkeypatch):
    # A worker killed by the out-of-memory killer (or a codec crash) made the run wait for ever.
    import os
    import signal
    import threading

    import moksori.data.preprocess as preprocess_module

    dataset, _, _, config = run
    parent = os.getpid()
    load = preprocess_module._load

    def load_killing_on_good3(utt):
        if utt.id == "good3" and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return load(utt)

    monkeypatch.setattr(preprocess_module, "_load", load_killing_on_good3)
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(report=preprocess_dataset(dataset, tmp_path / "out", config, workers=2, progress=False)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=120)
    assert "report" in result, "preprocessing hung after a worker died"
    rejected = {r["id"]: r for r in read_jsonl(tmp_path / "out" / "rejected.jsonl")}
    assert rejected["good3"]["reason"] == "error" and "died" in rejected["good3"]["message"]
    assert {utt_id: r["reason"] for utt_id, r in rejected.items() if utt_id != "good3"} == BAD
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "out" / "manifest.jsonl")) == [
        f"good{i}" for i in range(6) if i != 3
    ]


def test_stopping_the_workers_early_does_not_wait_for_every_clip(tmp_path, monkeypatch):
    # Ctrl-C ends the loop over the workers' results; the pool must not first do every clip left.
    import time

    import moksori.data.preprocess as preprocess_module
    from moksori.data.readers import Utterance

    def slow_clip(utt):
        time.sleep(0.05)
        return "rejected", {"id": utt.id}

    monkeypatch.setattr(preprocess_module, "_process_clip", slow_clip)
    utterances = [Utterance(f"c{i}", tmp_path / f"c{i}.wav", "text") for i in range(400)]
    results = preprocess_module._map_clips(utterances, tmp_path, PreprocessConfig(), workers=2)
    assert next(results)[1] == {"id": "c0"}
    started = time.perf_counter()
    results.close()
    assert time.perf_counter() - started < 3  # every clip: 400 x 0.05 s over 2 workers = 10 s


def test_a_full_output_disk_stops_the_run_instead_of_rejecting_the_clips(run, tmp_path, monkeypatch):
    # Every clip after the disk filled was rejected as "error: LibsndfileError: System error."
    # and the run reported success with 1 of 20 clips kept.
    import errno

    import moksori.data.preprocess as preprocess_module

    def save_on_full_disk(path, wave, sample_rate):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(preprocess_module, "save_wav", save_on_full_disk)
    dataset, _, _, config = run
    out = tmp_path / "out"
    with pytest.raises(OSError) as caught:
        preprocess_dataset(dataset, out, config, workers=2, progress=False)
    assert caught.value.errno == errno.ENOSPC and "No space left on device" in caught.value.strerror
    assert caught.value.filename.startswith(str(out / "wavs"))
    assert not (out / "rejected.jsonl").exists()


def test_a_full_disk_when_the_manifest_is_written_names_the_output_folder(run, tmp_path, monkeypatch):
    # It said "[Errno 28] No space left on device" naming no file.
    import errno

    import moksori.data.preprocess as preprocess_module

    def write_on_full_disk(path, records):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(preprocess_module.manifest, "write_jsonl", write_on_full_disk)
    dataset, _, _, config = run
    with pytest.raises(OSError) as caught:
        preprocess_dataset(dataset, tmp_path / "out", config, workers=1, progress=False)
    assert caught.value.filename == str(tmp_path / "out") and "No space left" in caught.value.strerror
