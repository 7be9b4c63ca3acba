"""The `moksori` command. Thin: it parses arguments and calls the modules."""
# User mistakes (ValueError, OSError, LookupError, moksori.errors.UserError ...) print one line
# "moksori COMMAND: error: ..." and exit 2; moksori's own warnings print as one line too.

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from moksori import __version__
from moksori.errors import UserError

DESCRIPTION = """\
moksori: Korean and English text-to-speech. Speak text with a voice, record and train your
own voice in the browser studio, or train models from a dataset on the command line."""

EPILOG = """\
common tasks:
  moksori say "안녕하세요" -o hello.wav      speak with the voice shipped with moksori
  moksori serve                             the HTTP API, the recording studio (/studio) and the voice pages
  moksori finetune DATASET --out voices/me  make your own voice from about an hour of recordings
  moksori demo                              the whole path on a generated sample dataset

`moksori COMMAND --help` describes a command's options."""

DEMO_SENTENCE = {
    "ko": "안녕하세요. 오늘은 2026년 11월 21일, 사과 3개에 4,500원이에요.",
    "en": "Hello. Today is November 21st, 2026, and three apples cost $4.50.",
}


def _cmd_text(args: argparse.Namespace) -> int:
    from moksori.text import TextFrontend

    text = args.text if args.text is not None else sys.stdin.read()
    frontend = TextFrontend(args.lang, add_blank=args.add_blank)
    result = frontend.process(text, strict=args.strict)
    if args.json:
        print(json.dumps(result.__dict__, ensure_ascii=False))
        return 0
    print(f"normalized: {result.normalized}")
    print(f"pronounced: {result.pronounced}")
    print(f"tokens:     {' '.join(result.tokens)}")
    print(f"ids:        {' '.join(map(str, result.ids))}")
    print(f"symbols:    {frontend.symbols.version} ({len(frontend.symbols)} symbols)")
    return 0


def _cmd_sample_dataset(args: argparse.Namespace) -> int:
    from moksori.data.prompt_sets import read_prompt_file
    from moksori.data.sample_dataset import make_sample_dataset

    prompts = None
    if args.prompts:
        prompts = [line for path in args.prompts for line in read_prompt_file(path)]
    out = make_sample_dataset(
        args.out, language=args.lang, n=args.n, seed=args.seed, voice=args.voice, prompts=prompts,
        extra_prompt_files=args.extra_prompts or (),
    )
    print(f"sample dataset written to {out}")
    return 0


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
    from moksori.data.report import format_report

    config = PreprocessConfig(language=args.lang, add_blank=args.add_blank)
    report = preprocess_dataset(args.dataset, args.out, config, workers=args.workers)
    print(format_report(report))
    if report.n_kept == 0:
        reasons = ", ".join(f"{count} {reason}" for reason, count in report.rejected_by_reason.items())
        print(f"moksori preprocess: error: no clip was kept ({reasons}); the reasons of each are in "
              f"{Path(args.out) / 'rejected.jsonl'}", file=sys.stderr)
        return 2
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from moksori.models.registry import describe_families
    from moksori.recipes import available_recipes

    print(describe_families(language=args.lang))
    print("\nrecipes (moksori train NAME): " + ", ".join(available_recipes()))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    if args.what in ("synth", "serve"):
        _passive_threads()

    benchmark = importlib.import_module(f"moksori.bench.{args.what}")
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return benchmark.main(rest) or 0


def _cmd_train(args: argparse.Namespace) -> int:
    from moksori.training.loop import run

    return run(args)


def _cmd_bundle(args: argparse.Namespace) -> int:
    from moksori.synthesis import make_bundle

    out = make_bundle(
        args.acoustic,
        args.out,
        vocoder_ckpt=args.vocoder,
        name=args.name,
        description=args.description,
        licence=args.licence,
        overwrite=args.overwrite,
    )
    print(f"voice bundle written to {out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from moksori.synthesis.onnx_export import export_onnx

    if not args.onnx:
        raise ValueError("nothing to export: pass --onnx")
    written = export_onnx(args.voice)
    for path in written:
        print(f"wrote {path}")
    from moksori.synthesis import read_voice_json

    vocoder = read_voice_json(args.voice)["vocoder"].get("model_name")
    if vocoder is not None and not any(path.name == "vocoder.onnx" for path in written):
        print(f"note: the {vocoder} vocoder has no ONNX graph; say and serve run it in PyTorch", file=sys.stderr)
    return 0


def _passive_threads() -> None:
    """Inference commands: with MOKSORI_THREAD_SPIN=0, PyTorch's idle threads sleep (set before torch loads)."""
    from moksori.threads import prefer_passive_threads

    prefer_passive_threads()


def _cmd_say(args: argparse.Namespace) -> int:
    import time

    _check_not_a_folder(args.output, "-o", "out.wav")
    _passive_threads()
    from moksori.synthesis import Synthesizer
    from moksori.synthesis.synthesizer import configure_allocator

    configure_allocator()
    from moksori.voices import resolve_voice

    voice = resolve_voice(args.voice)
    if voice.is_file():  # e.g. a checkpoint; the lexicon lookup below would say "lexicon.json: Not a directory"
        raise ValueError(f"{voice}: a file, not a voice folder (make a voice from checkpoints with `moksori bundle`)")
    text = args.text if args.text is not None else sys.stdin.read()
    from moksori.text.lexicon import effective_lexicon

    lexicon = effective_lexicon(voice)  # the voice's lexicon over the global one
    if args.ssml:
        from moksori.text.ssml import parse_ssml

        document = parse_ssml(text, language=_voice_language(voice), lexicon=lexicon.apply)  # before loading weights
    else:
        text = lexicon.apply(text)
    synthesizer = Synthesizer(voice, use_onnx=args.onnx, num_threads=args.threads, precision=args.precision)
    if getattr(args, "style_ref", None) is not None and not synthesizer.onnx_style_references:
        print("note: this voice's ONNX export cannot encode a style reference; using its PyTorch models",
              file=sys.stderr)
        synthesizer = Synthesizer(voice, use_onnx=False, num_threads=args.threads, precision=args.precision)
    # A precision the voice was not checked for is warned about by the Synthesizer (logged).
    if args.noise_scale is not None and "noise_scale" not in synthesizer.acoustic_knobs:
        family = synthesizer.voice.config.get("acoustic", {}).get("model_name", "its acoustic model")
        raise ValueError(f"--sigma/--noise-scale: voice {synthesizer.voice.name!r} ({family}) has no sampling "
                         "temperature; leave it out")
    style = _style_from_args(args, synthesizer)
    started = time.perf_counter()
    noise_scale = DEFAULT_NOISE_SCALE if args.noise_scale is None else args.noise_scale
    options = dict(noise_scale=noise_scale, speaker=args.speaker, seed=args.seed, sigma=args.vocoder_sigma,
                   denoise=args.denoise, **({"style": style} if style else {}))
    if args.ssml:
        from moksori.synthesis.ssml import synthesize_ssml

        result = synthesize_ssml(synthesizer, document, speed=args.speed, **options)
    else:
        result = synthesizer.synthesize_report(text, speed=args.speed, **options)
    from moksori.audio import save_wav

    path = Path(args.output)
    save_wav(path, result.wave, synthesizer.sample_rate)
    elapsed = time.perf_counter() - started
    for failure in result.alignment_failures:  # an attention model lost its place (after one retry)
        print(f"warning: alignment failed in {failure}; that part may be garbled", file=sys.stderr)
    import soundfile

    seconds = soundfile.info(str(path)).duration
    print(f"{path}  ({seconds:.2f} s of audio in {elapsed:.2f} s, real-time factor {elapsed / max(seconds, 1e-9):.3f})")
    return 0


def _lexicon_path(args: argparse.Namespace) -> Path:
    from moksori.text.lexicon import global_lexicon_path, voice_lexicon_path
    from moksori.voices import resolve_voice

    if args.voice is None:
        return global_lexicon_path()
    folder = resolve_voice(args.voice)
    if not (folder / "voice.json").is_file():
        raise FileNotFoundError(f"{folder} is not a voice folder (no voice.json)")
    return voice_lexicon_path(folder)


def _cmd_lexicon(args: argparse.Namespace) -> int:
    """``moksori lexicon add|remove|list|test``: the global lexicon, or a voice's with --voice."""
    from moksori.text.lexicon import Lexicon, effective_lexicon

    path = _lexicon_path(args)
    lexicon = Lexicon.load(path)
    if args.action == "add":
        written, spoken = lexicon.add(args.written, args.spoken)
        lexicon.save(path)
        print(f"added {written} → {spoken}  ({path})")
    elif args.action == "remove":
        spoken = lexicon.remove(args.written)
        lexicon.save(path)
        print(f"removed {args.written.strip()} → {spoken}  ({path})")
    elif args.action == "list":
        print(f"# {path}: {len(lexicon)} entries")
        for written, spoken in sorted(lexicon.entries.items()):
            print(f"{written}\t{spoken}")
    else:
        from moksori.text import TextFrontend
        from moksori.voices import resolve_voice

        voice_dir = resolve_voice(args.voice) if args.voice is not None else None
        replaced = effective_lexicon(voice_dir).apply(args.text)
        result = TextFrontend(args.lang).process(replaced, strict=False)
        print(f"lexicon:    {replaced}")
        print(f"normalized: {result.normalized}")
        print(f"pronounced: {result.pronounced}")
    return 0


def _voice_language(voice: Path) -> str:
    """A voice folder's language from its voice.json (``ko`` when it does not say)."""
    try:
        data = json.loads((voice / "voice.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "ko"  # loading the voice reports what is wrong with it
    return str(data.get("language") or data.get("text_frontend", {}).get("language") or "ko")


DEFAULT_NOISE_SCALE = 0.667  # the Synthesizer's default sampling temperature

def _style_from_args(args: argparse.Namespace, synthesizer: Any) -> dict[str, Any]:
    """Flowtron's style controls from ``--style-ref`` (a wav), ``--style-ref-text``,
    ``--style-strength``, ``--style-component``, ``--style-segments``."""
    wave = rate = None
    if getattr(args, "style_ref", None) is not None:
        from moksori.audio.io import AudioLimitError
        from moksori.synthesis.style_reference import load_style_reference

        try:
            wave, rate = load_style_reference(args.style_ref)
        except AudioLimitError as error:  # its message names the limit, not the file
            raise ValueError(f"{args.style_ref}: {error}") from None
    return synthesizer.style_controls(
        ref_wave=wave, ref_sample_rate=rate, ref_text=getattr(args, "style_ref_text", None),
        strength=getattr(args, "style_strength", None), component=getattr(args, "style_component", None),
        segments=getattr(args, "style_segments", None),
    )


def _cmd_import(args: argparse.Namespace) -> int:
    from moksori.checkpoint import import_published

    if args.out.exists() and not args.overwrite:
        raise ValueError(f"{args.out} already exists; choose another --out, or pass --overwrite to replace it")
    out = import_published(args.model, args.checkpoint, args.out)
    print(f"wrote {out} (a {args.model} checkpoint: `moksori bundle` and recipes' init_from read it)")
    return 0


def _non_negative(text: str) -> float:
    """argparse type: a finite number >= 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _port(text: str) -> int:
    """argparse type: a TCP port number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {value}")
    return value


def _cmd_finetune(args: argparse.Namespace) -> int:
    import logging

    from moksori.training.finetune import finetune

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = finetune(
        args.dataset,
        args.base,
        out=args.out,
        name=args.name,
        acoustic_steps=args.acoustic_steps,
        vocoder_steps=args.vocoder_steps,
        freeze=args.freeze or (),
        lr=args.lr,
        vocoder_lr=args.vocoder_lr,
        run_dir=args.run_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        recipe=args.recipe,
        workers=args.workers,
    )
    print(f"voice written to {result.voice_dir}")
    print(result.describe())
    return 0


def _check_not_a_folder(path: Path | None, option: str, example: str) -> None:
    """Before any work: a file option given a folder (the atomic write would fail at the end,
    naming its temporary file)."""
    if path is not None and Path(path).is_dir():
        raise ValueError(f"{path}: is a folder; {option} takes the file to write (e.g. {Path(path) / example})")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    _check_not_a_folder(args.json, "--json", "evaluation.json")
    if getattr(args, "precision", None):  # the reduced-precision guard needs no recordings
        from moksori.evaluation.precision_check import run as check_precision

        return check_precision(args)
    if args.dataset_dir is None:
        raise ValueError("moksori evaluate needs a preprocessed DATASET_DIR (or --precision to compare precisions)")
    from moksori.evaluation.evaluate import run

    return run(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    _passive_threads()
    from moksori.server.run import serve

    from moksori.storage import default_voices_dir

    serve(
        args.host,
        args.port,
        args.voices or default_voices_dir(),
        workers=args.workers,
        db_url=args.db_url,
        require_api_keys=args.api_keys,
        default_voice=args.default_voice,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        max_text_chars=args.max_text_chars,
        synthesis_precision=args.precision,
    )
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from moksori.studio.queue import queue_url, run_worker

    url = args.queue or queue_url()
    if not url:
        print("moksori worker: no queue; pass --queue redis://HOST:PORT/DB or set MOKSORI_TRAINING_QUEUE", file=sys.stderr)
        return 2
    try:
        from moksori.storage import default_voices_dir

        run_worker(url, args.db_url, args.voices or default_voices_dir(), device=args.device, burst=args.burst)
    except ValueError as error:
        print(f"moksori worker: {error}", file=sys.stderr)
        return 2
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    from moksori.server import run

    if args.action == "create":
        owner = run.owner_id_of(args.db_url, args.owner) if args.owner else None
        run.keys_create(args.db_url, args.name, args.rate_limit, owner_id=owner)
    elif args.action == "list":
        run.keys_list(args.db_url)
    else:
        run.keys_revoke(args.db_url, args.key)
    return 0


def _cmd_users(args: argparse.Namespace) -> int:
    import getpass

    from moksori.server import run

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    run.users_create(args.db_url, args.username, password)
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        from moksori.store.database import upgrade

        print(f"database at revision {upgrade(args.db_url)}")
        return 0
    from moksori.store.erd import main as erd_main

    return erd_main(["--out", str(args.out)])


def _cmd_demo(args: argparse.Namespace) -> int:
    """The README's main job: espeak sample set → preprocess → report → a short training run → speak,
    then the same sentence in the shipped default voice.

    The demo's own voice is a tiny Glow-TTS trained for a few hundred steps with Griffin-Lim as its
    vocoder: it shows the whole path, not a usable voice. The shipped voice (moksori/voices/ko_default)
    was trained for hours with the same code (the default_ko recipe).
    """
    import shutil

    from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
    from moksori.data.report import format_report
    from moksori.data.sample_dataset import make_sample_dataset

    out = Path(args.out)
    dataset = make_sample_dataset(out / "dataset", language=args.lang, n=args.n, seed=0)
    features = out / "preprocessed"
    report = preprocess_dataset(dataset, features, PreprocessConfig(language=args.lang))
    print(format_report(report))
    print(f"\ndataset: {dataset}\nfeatures: {features}")
    if args.train_steps <= 0:
        return 0

    from moksori.recipes import resolve_recipe
    from moksori.training.pipeline import make_voice, voice_stages

    stages = voice_stages(resolve_recipe("tiny_glowtts"))
    stages[0].recipe.train.steps = args.train_steps
    runs = out / "runs"
    shutil.rmtree(runs, ignore_errors=True)  # the demo's own earlier run
    voice = make_voice(features, stages, out / "voice", run_dir=runs, name="demo",
                       description="tiny demo voice (espeak data, Griffin-Lim)", overwrite=True)
    # Through the real parser, so the demo's `say` gets every option's default.
    say = build_parser().parse_args(["say", DEMO_SENTENCE[args.lang], "--voice", str(voice), "-o",
                                     str(out / "demo.wav"), "--threads", "2", "--seed", "0"])
    _cmd_say(say)
    print("\nthe same sentence in the default voice shipped with moksori:")
    say.voice, say.output, say.text = None, out / "default_voice.wav", DEMO_SENTENCE["ko"]
    return _cmd_say(say)


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="a shipped recipe's name (e.g. glowtts_hifigan_ko; `moksori models` lists them) or a recipe YAML file")
    parser.add_argument("--stage", help="stage of a multi-stage recipe (e.g. acoustic, vocoder)")
    parser.add_argument("--resume", action="store_true", help="continue the run from latest.pt in its run folder")
    parser.add_argument("--init-from", help="warm-start from a checkpoint, run folder or voice bundle")
    parser.add_argument("--run-dir", help="run folder (overrides the recipe's run_dir)")
    parser.add_argument("--max-steps", type=int, help="total steps (overrides the recipe's train.steps)")
    parser.add_argument("--data-dir", help="preprocessed folder (overrides the recipe's data.dir)")
    parser.add_argument("--vocoder-finetune-from", metavar="ACOUSTIC_CKPT",
                        help="train the vocoder on this acoustic model's ground-truth-aligned mels")


def _text_may_start_with_a_minus(parser: argparse.ArgumentParser) -> None:
    """Read "-5도" or "-3.5℃입니다" as the text, not as an unknown option: argparse treats an
    argument as a number only when it is one whole ("-5"), and no option of these commands starts
    with a minus and a digit. (A private attribute, unchanged since Python 3.2; without it the text
    needs ``--`` before it.)"""
    import re

    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = re.compile(r"^-\d")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moksori", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"moksori {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    text = commands.add_parser("text", help="print normalized text, pronunciation and token ids")
    text.add_argument("text", nargs="?", help="text to read (stdin when omitted)")
    text.add_argument("--lang", default="ko", choices=["ko", "en"], help="language of the text (default: ko)")
    text.add_argument("--add-blank", action="store_true", help="interleave blank tokens (Glow-TTS)")
    text.add_argument("--no-strict", dest="strict", action="store_false",
                      help="drop unreadable characters with a warning instead of failing")
    text.add_argument("--json", action="store_true", help="print one JSON object")
    text.set_defaults(func=_cmd_text)
    _text_may_start_with_a_minus(text)

    sample = commands.add_parser("sample-dataset", help="synthesise an LJSpeech-format dataset with espeak-ng")
    sample.add_argument("--lang", default="ko", choices=["ko", "en"], help="language of the sentences (default: ko)")
    sample.add_argument("--n", type=int, default=100, help="number of clips (default: 100)")
    sample.add_argument("--out", required=True, type=Path, help="folder to write the dataset to (LJSpeech layout)")
    sample.add_argument("--seed", type=int, default=0, help="picks the sentences (default: 0)")
    sample.add_argument("--voice", default=None, help="espeak-ng voice, e.g. ko or ko+f3")
    sample.add_argument("--prompts", nargs="*", type=Path,
                        help="prompt files (sentence<TAB>length or one per line) instead of the built-in list")
    sample.add_argument("--extra-prompts", nargs="*", type=Path,
                        help="prompt files added to the built-in list (e.g. ../shared/data/korean_corpus.csv)")
    sample.set_defaults(func=_cmd_sample_dataset)

    pre = commands.add_parser("preprocess", help="check clips, cache mels and token ids, split, report")
    pre.add_argument("dataset", type=Path, help="LJSpeech/KSS/mimic-recording-studio folder or a filelist")
    pre.add_argument("--out", required=True, type=Path, help="folder for the features, splits and report")
    pre.add_argument("--lang", default="ko", choices=["ko", "en"], help="language of the transcripts (default: ko)")
    pre.add_argument("--add-blank", action="store_true", help="interleave blank tokens in the token ids (Glow-TTS)")
    pre.add_argument("--workers", type=int, default=2, help="processes that check clips and compute mels (default: 2)")
    pre.set_defaults(func=_cmd_preprocess)

    train = commands.add_parser("train", help="train an acoustic model or a vocoder from a YAML recipe")
    _add_train_arguments(train)
    train.set_defaults(func=_cmd_train)

    imp = commands.add_parser("import", help="convert a published checkpoint (e.g. NVIDIA's WaveGlow) into a moksori one")
    imp.add_argument("model", help="model family (`moksori models` lists them), e.g. waveglow")
    imp.add_argument("checkpoint", type=Path, help="the published file (pickled models are read without running code)")
    imp.add_argument("--out", required=True, type=Path, help="moksori checkpoint to write")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing file at --out")
    imp.set_defaults(func=_cmd_import)

    bundle = commands.add_parser("bundle", help="make a voice bundle (folder) from training checkpoints")
    bundle.add_argument("acoustic", type=Path, help="acoustic checkpoint or its run folder")
    bundle.add_argument("--vocoder", type=Path, help="vocoder checkpoint, run folder, or a voice folder whose vocoder is reused (default: Griffin-Lim)")
    bundle.add_argument("--out", required=True, type=Path, help="voice folder to write")
    bundle.add_argument("--name", help="voice name (default: the folder name)")
    bundle.add_argument("--description", default="", help="one line about the voice, shown in voice lists")
    bundle.add_argument("--licence", default="unspecified", help="the voice's licence, e.g. CC-BY-4.0 (default: unspecified)")
    bundle.add_argument("--overwrite", action="store_true", help="replace an existing bundle of the same voice")
    bundle.set_defaults(func=_cmd_bundle)

    export = commands.add_parser("export", help="export a voice's models (ONNX)")
    export.add_argument("voice", type=Path, help="voice bundle folder")
    export.add_argument("--onnx", action="store_true",
                        help="write acoustic.onnx and vocoder.onnx (a WaveNet vocoder has none: it stays in PyTorch)")
    export.set_defaults(func=_cmd_export)

    say = commands.add_parser("say", help="speak text with a voice into a wav file")
    say.add_argument("text", nargs="?", help="text to speak (stdin when omitted)")
    _text_may_start_with_a_minus(say)
    say.add_argument("--voice", help="voice bundle folder; 'default' or left out: the Korean voice shipped "
                     "with moksori (ko_default)")
    say.add_argument("-o", "--output", default=Path("out.wav"), type=Path, help="wav file to write (default: out.wav)")
    say.add_argument("--speed", type=float, default=1.0, help="speaking rate: 1.0 normal, 1.2 faster, 0.8 slower (default: 1.0)")
    say.add_argument("--ssml", action="store_true",
                     help="the text is SSML: <speak>, <break time>, <sub alias>, <say-as>, <prosody rate>, <p>, <s>")
    say.add_argument("--noise-scale", "--sigma", dest="noise_scale", type=float,
                     help="the acoustic model's sampling temperature (Glow-TTS noise scale; --sigma: Flowtron's sigma; "
                          f"default {DEFAULT_NOISE_SCALE}; Tacotron2 has none)")
    style = say.add_argument_group("style (Flowtron voices)")
    style.add_argument("--style-ref", type=Path, metavar="WAV",
                       help="a recording whose style (its latent z) to follow: a sentence or a few (at most 30 s, "
                       "as on the server)")
    style.add_argument("--style-ref-text", metavar="TEXT", help="what the style recording says (better transfer)")
    style.add_argument("--style-strength", type=float, metavar="FLOAT",
                       help="0..1: how far to move from the voice's own style toward the reference (default 1)")
    style.add_argument("--style-segments", type=int, metavar="N",
                       help="follow the reference in N segments over time instead of its overall mean")
    style.add_argument("--style-component", type=int, metavar="INT", help="mixture component of the prior (voices with one)")
    say.add_argument("--vocoder-sigma", type=_non_negative, metavar="FLOAT",
                     help="the vocoder's sampling temperature (WaveGlow; default: the vocoder's, 0.666)")
    say.add_argument("--denoise", type=_non_negative, metavar="FLOAT",
                     help="denoiser strength (WaveGlow; 0 turns it off; default: the vocoder's, 0.01)")
    say.add_argument("--speaker", help="speaker name or index (multi-speaker voices)")
    say.add_argument("--seed", type=int, help="fixed noise for repeatable output")
    say.add_argument("--threads", type=int, help="CPU threads")
    say.add_argument("--precision", default="fp32", type=str.lower, choices=["fp32", "bf16", "int8", "auto"],
                     help="bf16/int8 for the modules each model declares safe (PyTorch path); auto: the one the "
                     "voice's `moksori evaluate --precision` check recommends (default: fp32)")
    onnx_switch = say.add_mutually_exclusive_group()
    onnx_switch.add_argument("--onnx", dest="onnx", action="store_true", default=None,
                             help="use the ONNX files (default: when the voice has them; an exported Glow-TTS or "
                             "Tacotron2 voice with a HiFi-GAN or Vocos vocoder then runs without torch)")
    onnx_switch.add_argument("--no-onnx", dest="onnx", action="store_false", help="use the PyTorch models even when ONNX files exist")
    say.set_defaults(func=_cmd_say)

    lexicon = commands.add_parser("lexicon", help="pronunciation lexicon: add, remove, list, test (global, or a voice's)")
    lexicon_actions = lexicon.add_subparsers(dest="action", required=True, metavar="ACTION")
    lexicon_add = lexicon_actions.add_parser("add", help="say WRITTEN as SPOKEN (e.g. 'K-pop' '케이팝')")
    lexicon_add.add_argument("written", help="the word as it is written")
    lexicon_add.add_argument("spoken", help="how to say it, in Hangul (or plain English spelling)")
    lexicon_remove = lexicon_actions.add_parser("remove", help="remove the entry for WRITTEN")
    lexicon_remove.add_argument("written", help="the written form whose entry to remove")
    lexicon_actions.add_parser("list", help="list the entries")
    lexicon_test = lexicon_actions.add_parser("test", help="show TEXT after the lexicon, normalisation and pronunciation")
    lexicon_test.add_argument("text", help="text to show through the lexicon")
    lexicon_test.add_argument("--lang", default="ko", choices=["ko", "en"], help="language of the text (default: ko)")
    for sub in (lexicon_add, lexicon_remove, lexicon_actions.choices["list"], lexicon_test):
        sub.add_argument("--voice", metavar="VOICE_DIR",
                         help="the voice's own lexicon (its folder's lexicon.json; it wins over the global one); "
                         "default: the global lexicon ($MOKSORI_LEXICON or ~/.config/moksori/lexicon.json)")
    lexicon.set_defaults(func=_cmd_lexicon)

    tune = commands.add_parser(
        "finetune",
        help="fine-tune a voice (default: the shipped one) on your own recordings, then bundle it",
        description="Fine-tune a voice on a small dataset: preprocess it like the base voice, train the "
        "acoustic model and the vocoder from the base voice's weights, and write a voice folder.",
    )
    tune.add_argument("dataset", type=Path,
                      help="LJSpeech/KSS/mimic-recording-studio folder or filelist, or a `moksori preprocess` folder")
    tune.add_argument("--from", dest="base", default="default", metavar="default|VOICE_DIR",
                      help="the voice to start from (default: the shipped ko_default)")
    tune.add_argument("--out", type=Path, help="voice folder to write (default: voices/NAME)")
    tune.add_argument("--name", help="voice name (default: the --out folder's name, else the dataset's)")
    tune.add_argument("--acoustic-steps", type=int, help="acoustic model steps (the recipe's; finetune_ko: 1000)")
    tune.add_argument("--vocoder-steps", type=int,
                      help="vocoder steps (recipe default: 1000; 0 reuses the base voice's vocoder as it is)")
    tune.add_argument("--freeze", nargs="+", metavar="PREFIX",
                      help="acoustic parameter-name prefixes to keep fixed (e.g. encoder decoder.flows.0)")
    tune.add_argument("--lr", type=float, help="acoustic learning rate, in the recipe's schedule (finetune_ko, Glow-TTS: "
                      "0.05 on the Noam scale; finetune_tacotron2_ko, Tacotron2: 3e-4)")
    tune.add_argument("--vocoder-lr", type=float, help="vocoder learning rate (recipe default 0.0002)")
    tune.add_argument("--run-dir", type=Path, help="folder for the preprocessed data and both runs "
                      "(default: runs/finetune_NAME)")
    tune.add_argument("--resume", action="store_true", help="continue the runs in --run-dir")
    tune.add_argument("--overwrite", action="store_true", help="replace an existing voice folder at --out")
    tune.add_argument("--recipe", type=Path,
                      help="training settings: a recipe file or a shipped recipe's name, e.g. finetune_tacotron2_ko "
                      "(default: finetune_ko)")
    tune.add_argument("--workers", type=int, default=2, help="preprocessing processes")
    tune.set_defaults(func=_cmd_finetune)

    evaluate = commands.add_parser(
        "evaluate", help="compare a voice's synthesis with held-out recordings (MCD, F0, duration, CER, DNSMOS)"
    )
    evaluate.add_argument("voice", help="voice folder (voice.json + weights), or 'default' for the shipped voice")
    evaluate.add_argument("dataset_dir", type=Path, nargs="?",
                          help="preprocessed dataset folder (moksori preprocess); not needed with --precision")
    evaluate.add_argument("--split", default="val", choices=["val", "train", "all"], help="utterances to use")
    evaluate.add_argument("--limit", type=int, help="evaluate only the first N utterances")
    evaluate.add_argument(
        "--asr-model", type=Path, help="local faster-whisper model folder, for CER (default: the judges extra's Whisper base)"
    )
    evaluate.add_argument("--no-asr", action="store_true", help="skip the speech recogniser (CER/WER)")
    evaluate.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (SIG/BAK/OVRL/P.808)")
    evaluate.add_argument("--seed", type=int, default=0, help="synthesis seed")
    evaluate.add_argument("--json", type=Path, help="also write the results to this JSON file")
    evaluate.add_argument("--compare", metavar="OTHER_VOICE", help="a second voice (folder or 'default'), side by side")
    evaluate.add_argument("--precision", nargs="+", type=str.lower, choices=["bf16", "int8"],
                          help="instead: compare the voice in fp32 with these precisions on held-out sentences "
                          "(durations, MCD, F0, speed) and record the verdict and recommended precision in voice.json")
    evaluate.add_argument("--no-record", action="store_true", help="with --precision: do not write voice.json")
    evaluate.set_defaults(func=_cmd_evaluate)

    serve = commands.add_parser("serve", help="serve voices over HTTP (TTS API; see docs/server.md)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 for every "
                       "network, which turns API keys on)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument("--voices", default=None, type=Path,
                       help="folder of voice bundles (default: MOKSORI_SERVER_VOICES_DIR, else MOKSORI_STORAGE_ROOT/voices, "
                       "else ./voices); the voice shipped with moksori is offered too, as ko_default")
    serve.add_argument("--workers", type=int, default=1, help="server processes on this machine")
    serve.add_argument("--db-url", default="sqlite:///moksori.db", help="SQLAlchemy URL (PostgreSQL works too)")
    serve.add_argument("--default-voice", help="voice used when a request names none (default: the first "
                       "voice of --voices by name, or ko_default when there is none)")
    keys_switch = serve.add_mutually_exclusive_group()
    keys_switch.add_argument("--api-keys", dest="api_keys", action="store_true", default=None,
                             help="require API keys (default: only when bound to a non-loopback address)")
    keys_switch.add_argument("--no-api-keys", dest="api_keys", action="store_false",
                             help="serve without API keys even on a non-loopback address")
    serve.add_argument("--max-concurrency", type=int, default=2, help="syntheses running at once")
    serve.add_argument("--max-queue", type=int, default=16, help="requests waiting before 503")
    serve.add_argument("--max-text-chars", type=int, default=5000, help="longest text a request may send (default: %(default)s)")
    serve.add_argument("--precision", type=str.lower, choices=["fp32", "bf16", "int8", "auto"],
                       help="synthesis precision of every voice (auto: each voice's recommended one; default: "
                       "$MOKSORI_SERVER_SYNTHESIS_PRECISION, else fp32)")
    serve.set_defaults(func=_cmd_serve)

    worker = commands.add_parser("worker", help="run studio training jobs from the queue (see docs/deploy.md)")
    worker.add_argument("--queue", help="Redis URL of the training queue (default: $MOKSORI_TRAINING_QUEUE)")
    worker.add_argument("--db-url", default=os.environ.get("MOKSORI_SERVER_DB_URL", "sqlite:///moksori.db"),
                        help="the servers' database (default: $MOKSORI_SERVER_DB_URL)")
    worker.add_argument("--voices", type=Path, default=None,
                        help="the servers' voices folder, where trained bundles go (shared storage; default: "
                        "MOKSORI_SERVER_VOICES_DIR, else MOKSORI_STORAGE_ROOT/voices, else ./voices)")
    worker.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="the device this worker trains on and advertises (auto: CUDA when there is a GPU)")
    worker.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    worker.set_defaults(func=_cmd_worker)
    keys = commands.add_parser("keys", help="API keys: create, list, revoke")
    keys.add_argument("--db-url", default="sqlite:///moksori.db", help="the server's database (default: %(default)s)")
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = key_actions.add_parser("create", help="create a key and print it once")
    create.add_argument("name", help="what the key is for (shown in `keys list`)")
    create.add_argument("--rate-limit", type=int, default=60, help="requests per minute")
    create.add_argument("--owner", help="studio user who owns the key (reaches that user's private voices)")
    key_actions.add_parser("list", help="list keys (prefixes only)")
    revoke = key_actions.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", help="the key's id or its prefix (from `keys list`)")
    keys.set_defaults(func=_cmd_keys)

    users = commands.add_parser("users", help="studio accounts: create (when sign-up is off, the operator makes them)")
    users.add_argument("--db-url", default="sqlite:///moksori.db", help="the server's database (default: %(default)s)")
    user_actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    user_create = user_actions.add_parser("create", help="create a studio account")
    user_create.add_argument("username", help="the new account's name")
    user_create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.set_defaults(func=_cmd_users)

    db = commands.add_parser("db", help="database: upgrade (migrate), erd (diagram in docs/)")
    db.add_argument("action", choices=["upgrade", "erd"], help="upgrade: migrate to the current schema; erd: draw it")
    db.add_argument("--db-url", default="sqlite:///moksori.db", help="the database (default: %(default)s)")
    db.add_argument("--out", default=Path("docs"), type=Path, help="erd: output folder")
    db.set_defaults(func=_cmd_db)

    models = commands.add_parser("models", help="the model families: role, presets, parameter counts; and the shipped recipes")
    models.add_argument("--lang", default="ko", help="text front end whose symbol table sizes the acoustic models")
    models.set_defaults(func=_cmd_models)

    bench = commands.add_parser("bench", help="benchmarks (not tests): preprocess, train, synth, serve")
    bench.add_argument("what", choices=["preprocess", "train", "synth", "serve"], help="what to measure")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options of the benchmark (see its --help)")
    bench.set_defaults(func=_cmd_bench)

    demo = commands.add_parser("demo", help="the README's main job on built-in data")
    demo.add_argument("--out", default=Path("out/demo"), type=Path, help="folder for everything it makes (default: out/demo)")
    demo.add_argument("--lang", default="ko", choices=["ko", "en"], help="language of the sample data (default: ko)")
    demo.add_argument("--n", type=int, default=40, help="sample clips")
    demo.add_argument("--train-steps", type=int, default=400, help="steps of the tiny Glow-TTS (0: stop after the report)")
    demo.set_defaults(func=_cmd_demo)
    return parser


# Bad input, files and folders that are missing or not writable, a feature a model family lacks:
# the user's to fix, so one clear line and no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, LookupError, NotImplementedError, UserError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(args.command)
        try:
            return args.func(args)
        except Exception as error:
            if not _is_user_error(error):
                raise
            print(f"moksori {args.command}: error: {_describe(error)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"moksori {args.command}: interrupted", file=sys.stderr)
            return 130


def _is_user_error(error: BaseException) -> bool:
    """The errors above, and a database URL that is malformed or names a database that cannot be
    opened (SQLAlchemy's own error classes; sqlalchemy is not imported for this)."""
    if isinstance(error, USER_ERRORS):
        return True
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, (exc.ArgumentError, exc.OperationalError))


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, KeyError) and error.args:  # str(KeyError) is the quoted key alone
        return str(error.args[0])
    return str(error) or type(error).__name__


def _warning_printer(command: str) -> Any:
    """moksori's own warnings as "moksori COMMAND: warning: ..." (no source path or line);
    other libraries' warnings as Python prints them."""
    default = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if category.__module__.startswith("moksori"):
            print(f"moksori {command}: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


if __name__ == "__main__":
    sys.exit(main())
