from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from moksori.synthesis import Synthesizer, load_voice, make_bundle
from moksori.models.interfaces import DEFAULT_CONTEXT_FRAMES as CONTEXT_FRAMES
from moksori.synthesis.inference import sentence_noise
from moksori.synthesis.synthesizer import HEAD_FRAMES
from moksori.text import UnreadableTextError

ONE = "안녕하세요."
THREE = "안녕하세요. 오늘은 날씨가 좋네요.\n\n같이 산책하러 갈까요?"


@pytest.fixture(scope="module")
def synth(voice_dir: Path) -> Synthesizer:
    return Synthesizer(voice_dir, use_onnx=False)


def test_synthesize_returns_float32_audio_growing_with_text(synth: Synthesizer) -> None:
    short = synth.synthesize(ONE, seed=1)
    longer = synth.synthesize("안녕하세요, 만나서 정말 반갑습니다", seed=1)
    assert short.dtype == np.float32 and short.ndim == 1 and short.size > 0
    assert np.isfinite(short).all()
    assert longer.size > short.size
    assert short.size % 256 == 0  # whole mel frames, no silence after the last sentence


def test_speed_changes_length(synth: Synthesizer) -> None:
    normal = synth.synthesize(ONE, speed=1.0, seed=0)
    fast = synth.synthesize(ONE, speed=2.0, seed=0)
    slow = synth.synthesize(ONE, speed=0.5, seed=0)
    assert fast.size < normal.size < slow.size


def test_seed_makes_output_deterministic(synth: Synthesizer) -> None:
    a = synth.synthesize(ONE, seed=5)
    assert np.array_equal(a, synth.synthesize(ONE, seed=5))
    assert not np.array_equal(a, synth.synthesize(ONE, seed=6))


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_a_seed_that_is_not_a_whole_number_from_0_is_refused_by_name(synth: Synthesizer, seed: object) -> None:
    """seed=-1 failed in numpy with "expected non-negative integer" (the CLI's whole message), and a
    stream only once its first sentence was drawn."""
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        synth.synthesize(ONE, seed=seed)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        synth.stream(THREE, seed=seed)


def test_stream_yields_sentence_chunks_equal_to_synthesize(synth: Synthesizer) -> None:
    chunks = list(synth.stream(THREE, seed=3, sentence_silence_s=0.1, paragraph_silence_s=0.5))
    # The first sentence comes as a short head (HEAD_FRAMES of audio) and its rest, then one chunk each.
    assert len(chunks) == 4
    assert chunks[0].size == HEAD_FRAMES * 256
    assert all(chunk.dtype == np.float32 for chunk in chunks)
    # Sentence silence after the first, paragraph silence after the second, none after the last.
    assert np.all(chunks[1][-2205:] == 0) and np.all(chunks[2][-11025:] == 0)
    whole = synth.synthesize(THREE, seed=3, sentence_silence_s=0.1, paragraph_silence_s=0.5)
    # synthesize batches the sentences through the acoustic model; stream runs them one by one.
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-4)


def test_batched_and_single_sentences_agree(voice_dir: Path) -> None:
    batched = Synthesizer(voice_dir, use_onnx=False, batch_size=4).synthesize(THREE, seed=2)
    single = Synthesizer(voice_dir, use_onnx=False, batch_size=1).synthesize(THREE, seed=2)
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_noise_free_path_matches_glow_tts_infer(synth: Synthesizer, frontend) -> None:
    model = synth.voice.acoustic
    ids = torch.tensor([frontend.to_ids(ONE)])
    lengths = torch.tensor([ids.size(1)])
    expected, _, _ = model.infer(ids, lengths, noise_scale=0.0, length_scale=1.3)
    wrapper = synth.voice.acoustic_model
    with torch.inference_mode():
        got = wrapper(ids, lengths, torch.tensor([0.0, 1.3]), torch.randn(1, 80, 7))
    assert torch.allclose(got, expected, atol=1e-5)


def test_sentence_noise_prefix_is_stable() -> None:
    assert np.array_equal(sentence_noise(1, 2, 10, 80), sentence_noise(1, 2, 30, 80)[:, :10])
    assert not np.array_equal(sentence_noise(1, 2, 10, 80), sentence_noise(1, 3, 10, 80))


def test_wav_bytes_and_file(synth: Synthesizer, tmp_path: Path) -> None:
    data, rate = soundfile.read(io.BytesIO(synth.to_wav_bytes(ONE, seed=0)), dtype="float32")
    assert rate == 22050 and data.size == synth.synthesize(ONE, seed=0).size
    path = synth.to_wav_file(ONE, tmp_path / "out" / "a.wav", seed=0)
    info = soundfile.info(str(path))
    assert info.samplerate == 22050 and info.subtype == "PCM_16" and info.channels == 1


def test_bad_input_is_rejected(synth: Synthesizer) -> None:
    for text in ("", "   \n\n "):
        with pytest.raises(ValueError, match="empty"):
            synth.synthesize(text)
    with pytest.raises(UnreadableTextError):
        synth.synthesize("안녕 ☃ 하세요")
    with pytest.raises(UnreadableTextError):
        next(synth.stream("첫 문장입니다. 둘째 ☃ 문장."))  # checked before the first chunk
    for speed in (0.2, 0, -1, 4.5, "fast"):
        with pytest.raises(ValueError, match="speed"):
            synth.synthesize(ONE, speed=speed)
    assert synth.synthesize(ONE, speed=4.0).size > 0
    assert synth.synthesize(ONE, speed=0.25).size > 0  # both ends included, as in OpenAI's API
    for noise_scale in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="noise_scale"):
            synth.synthesize(ONE, noise_scale=noise_scale)
    with pytest.raises(ValueError, match="single speaker"):
        synth.synthesize(ONE, speaker=3)


def test_griffin_lim_voice(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    voice = make_bundle(checkpoints["acoustic"], tmp_path / "gl")
    synth = Synthesizer(voice)
    assert not synth.uses_onnx and load_voice(voice).vocoder is None
    wave = synth.synthesize(ONE, seed=0)
    assert wave.dtype == np.float32 and wave.size > 0 and np.isfinite(wave).all()


def test_multi_speaker_voice(tmp_path: Path, frontend, helpers, checkpoints: dict[str, Path]) -> None:
    model = helpers.tiny_glow_tts(frontend, n_speakers=2)
    ckpt = helpers.write_checkpoint(tmp_path / "ms.pt", model, "glow_tts", frontend=frontend, speakers=["민지", "준호"])
    synth = Synthesizer(make_bundle(ckpt, tmp_path / "ms", vocoder_ckpt=checkpoints["vocoder"]), use_onnx=False)
    assert synth.speaker_id("준호") == 1 and synth.speaker_id(None) == 0
    a = synth.synthesize(ONE, speaker="민지", seed=0, noise_scale=0)
    b = synth.synthesize(ONE, speaker=1, seed=0, noise_scale=0)
    assert a.size > 0 and b.size > 0 and not (a.size == b.size and np.allclose(a, b))
    with pytest.raises(ValueError, match="no speaker"):
        synth.synthesize(ONE, speaker="영희")
    with pytest.raises(ValueError, match="out of range"):
        synth.synthesize(ONE, speaker=2)


@pytest.mark.parametrize("preset", ["v1", "v2", "v3"])
def test_stream_context_covers_the_published_vocoders(preset: str) -> None:
    # stream() vocodes a sentence's head and rest separately, each with CONTEXT_FRAMES of context:
    # with the published layouts the pieces must join to exactly the whole sentence's audio.
    from moksori.models.hifigan import Generator, HiFiGANConfig
    torch.manual_seed(0)
    generator = Generator(HiFiGANConfig.preset(preset)).eval()
    generator.remove_weight_norm()
    mel = torch.randn(1, 80, HEAD_FRAMES + 3 * CONTEXT_FRAMES)
    with torch.inference_mode():
        whole = generator.infer(mel).flatten()
        head = generator.infer(mel[:, :, : HEAD_FRAMES + CONTEXT_FRAMES]).flatten()[: HEAD_FRAMES * 256]
        rest = generator.infer(mel[:, :, HEAD_FRAMES - CONTEXT_FRAMES :]).flatten()[CONTEXT_FRAMES * 256 :]
    torch.testing.assert_close(torch.cat([head, rest]), whole, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def vocos_voice_dir(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path], helpers) -> Path:
    from moksori.models import build_model
    from moksori.models.vocos import VocosConfig

    torch.manual_seed(0)
    # 5 convolutions of kernel 9 + 2 frames of STFT overlap: 22 frames of context, more than CONTEXT_FRAMES.
    vocos = build_model("vocos", {**VocosConfig.preset("tiny").to_dict(), "kernel_size": 9, "num_layers": 4})
    with torch.no_grad():
        # Weights of unit gain (the 0.02 init and 1/num_layers layer scale leave a near-linear net in
        # which a frame's influence on its distant neighbours is too faint to see).
        for block in vocos.convnext:
            block.gamma.fill_(1.0)
            block.dwconv.weight.normal_(0.0, 0.3)
            block.pwconv1.weight.normal_(0.0, block.pwconv1.in_features**-0.5)
            block.pwconv2.weight.normal_(0.0, block.pwconv2.in_features**-0.5)
        vocos.out.weight.normal_(0.0, 0.1)
        vocos.out.bias[: vocos.bins].fill_(2.0)  # log-magnitudes around 2: audio of speech-like level
    root = tmp_path_factory.mktemp("vocos_voice")
    ckpt = helpers.write_checkpoint(root / "vocos.pt", vocos, "vocos")
    return make_bundle(checkpoints["acoustic"], root / "voice", vocoder_ckpt=ckpt)


def test_stream_joins_exactly_with_a_vocos_voice(vocos_voice_dir: Path) -> None:
    synth = Synthesizer(vocos_voice_dir, use_onnx=False)
    assert synth.voice.vocoder_name == "vocos"
    assert synth._context_frames == synth.voice.vocoder.context_frames == 22 > CONTEXT_FRAMES
    options = {"seed": 3, "sentence_silence_s": 0.1, "paragraph_silence_s": 0.5}
    whole = synth.synthesize(THREE, **options)
    assert whole.dtype == np.float32 and np.isfinite(whole).all() and np.abs(whole).max() > 0.1
    chunks = list(synth.stream(THREE, **options))
    assert len(chunks) == 4 and chunks[0].size == HEAD_FRAMES * 256
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-5)
    # HiFi-GAN's CONTEXT_FRAMES would not do for this vocoder: the head and the rest would not join.
    synth._context_frames = CONTEXT_FRAMES
    short = np.concatenate(list(synth.stream(THREE, **options)))
    assert short.shape == whole.shape and np.abs(short - whole).max() > 1e-4


def test_vocoder_controls_reach_the_vocoder_interface(synth: Synthesizer, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = synth._vocoder.infer
    monkeypatch.setattr(synth._vocoder, "infer", lambda mel, controls=None: seen.append(controls) or real(mel, controls))
    monkeypatch.setattr(synth._vocoder, "knobs", ("sigma", "denoise"))  # as WaveGlow's: this voice's refuses them
    synth.synthesize(ONE, sigma=0.5, denoise=0.01)
    list(synth.stream(ONE, sigma=0.5, denoise=0.01))
    assert len(seen) >= 2 and all(c.sigma == 0.5 and c.denoise == 0.01 for c in seen)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        synth.synthesize(ONE, sigma=-1.0)


def test_each_sentence_fades_out_before_its_silence(synth: Synthesizer) -> None:
    """A sentence's audio stopped where the vocoder left it (steps of 0.03 into silence: clicks)."""
    from moksori.synthesis.synthesizer import FADE_OUT_S

    n = round(FADE_OUT_S * synth.sample_rate)
    ended = synth._with_silence(np.ones(1000, dtype=np.float32), 50)
    assert ended.size == 1050 and (ended[: 1000 - n] == 1).all() and (ended[1000:] == 0).all()
    fade = ended[1000 - n : 1000]
    assert (np.diff(fade) < 0).all() and fade[0] < 1 and 0 < fade[-1] <= 1 / n
    assert synth._with_silence(np.ones(10, dtype=np.float32), 0).size == 10  # shorter than the fade: all of it
    wave = synth.synthesize("안녕하세요. 반갑습니다.", seed=1, sentence_silence_s=0.1)
    gap = np.nonzero(wave == 0)[0][0]  # the first sample of the silence after the first sentence
    assert abs(wave[gap - 1]) <= np.abs(wave[gap - n : gap]).max() / n + 1e-7


def test_the_shipped_voice_by_the_name_the_command_line_takes():
    # `moksori say --voice default` works; so does Synthesizer("default") from Python.
    synth = Synthesizer("default")
    assert synth.voice.config["name"] == "ko_default"
    assert synth.synthesize("안녕하세요.", seed=0).size > 0
