import pytest
import torch
from torch.utils.data import DataLoader

from moksori.audio import load_audio
from moksori.data.dataset import LengthBucketSampler, TTSDataset, collate_tts
from moksori.data.manifest import read_jsonl
from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
from moksori.data.sample_dataset import make_sample_dataset

PROMPTS = [
    "오늘은 날씨가 맑습니다.",
    "내일 아침 일찍 도서관에 갈 거예요.",
    "커피 한 잔 주세요.",
    "지하철역까지 걸어서 십 분 걸립니다.",
    "고양이가 창문 밖을 봅니다.",
]


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory):
    base = tmp_path_factory.mktemp("dataset")
    dataset = make_sample_dataset(base / "raw", n=5, prompts=PROMPTS, workers=1, progress=False)
    config = PreprocessConfig(language="ko", val_fraction=0.2, mel_dtype="float16")
    preprocess_dataset(dataset, base / "out", config, workers=1, progress=False)
    return base / "out"


def test_items(preprocessed):
    train = TTSDataset(preprocessed, "train")
    val = TTSDataset(preprocessed, "val")
    assert (len(train), len(val)) == (4, 1)
    records = {r["id"]: r for r in read_jsonl(preprocessed / "manifest.jsonl")}
    for item in train:
        record = records[item["id"]]
        assert item["ids"].dtype == torch.long and item["ids"].tolist() == record["ids"]
        assert item["mel"].dtype == torch.float32
        assert item["mel"].shape == (80, record["n_frames"])
        assert item["speaker"] == 0
        assert "wave" not in item
    assert train.frame_lengths == [records[r["id"]]["n_frames"] for r in train.records]


def test_wave_is_loaded_on_request(preprocessed):
    dataset = TTSDataset(preprocessed, "train", load_wave=True)
    item = dataset[0]
    expected = load_audio(preprocessed / dataset.records[0]["audio"])
    assert torch.equal(item["wave"], torch.from_numpy(expected))
    # frames cover the wave: samples ≈ frames * hop
    assert abs(item["wave"].numel() / 256 - item["mel"].shape[1]) <= 1


def test_collate_pads_to_the_longest(preprocessed):
    dataset = TTSDataset(preprocessed, "train", load_wave=True)
    items = [dataset[i] for i in range(len(dataset))]
    batch = collate_tts(items)
    n = len(items)
    longest_ids = max(len(i["ids"]) for i in items)
    longest_mel = max(i["mel"].shape[1] for i in items)
    assert batch["ids"].shape == (n, longest_ids)
    assert batch["mel"].shape == (n, 80, longest_mel)
    assert batch["wave"].shape == (n, max(i["wave"].numel() for i in items))
    assert batch["id"] == [i["id"] for i in items]
    assert batch["speaker"].tolist() == [0] * n
    for row, item in enumerate(items):
        length = batch["ids_lengths"][row]
        assert torch.equal(batch["ids"][row, :length], item["ids"])
        assert (batch["ids"][row, length:] == 0).all()
        frames = batch["mel_lengths"][row]
        assert torch.equal(batch["mel"][row, :, :frames], item["mel"])
        assert (batch["mel"][row, :, frames:] == 0).all()
        assert batch["wave_lengths"][row] == item["wave"].numel()


def test_dataloader_with_bucket_sampler(preprocessed):
    dataset = TTSDataset(preprocessed, "train")
    sampler = LengthBucketSampler(dataset.frame_lengths, batch_size=2, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_tts)
    seen = [utt_id for batch in loader for utt_id in batch["id"]]
    assert sorted(seen) == sorted(r["id"] for r in dataset.records)


def test_missing_folder_or_split_is_a_clear_error(tmp_path, preprocessed):
    with pytest.raises(FileNotFoundError, match="preprocessed folder"):
        TTSDataset(tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        TTSDataset(preprocessed, "test")


def test_collate_rejects_empty():
    with pytest.raises(ValueError):
        collate_tts([])
