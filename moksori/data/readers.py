"""Dataset readers: LJSpeech, KSS, NVIDIA-style filelists and mimic-recording-studio output.

Every reader turns a dataset on disk into a list of :class:`Utterance` (id, audio path,
transcript, speaker). Readers only parse transcripts; they never open audio, so a
missing audio file is not a reader error (preprocessing rejects it as ``missing``).

A line that cannot be parsed is *malformed*. :func:`scan_dataset` collects malformed
lines (file, line number, reason) next to the utterances, so a preprocessing run can
record them as rejected items and go on; :func:`read_dataset` raises
:class:`MalformedLineError` naming the file and line of the first one.

Formats (``format=`` names in brackets):

* LJSpeech [``ljspeech``]: a folder with ``metadata.csv``, lines ``id|text`` or
  ``id|raw text|normalized text`` (the normalized column is used when it is not
  empty); audio is ``wavs/{id}.wav`` (or ``.flac``, ``.mp3``, … when there is no wav, or
  the clip beside metadata.csv when wavs/ lacks it; an id written with its extension,
  ``0001.wav``, is the file's stem). A ``metadata.csv`` with
  no ``|`` on any line is read as a spreadsheet's CSV (comma-, semicolon- or tab-separated,
  quoted as Excel quotes; a header row such as ``id,text`` is skipped); so is such a filelist.
* KSS [``kss``]: a folder with ``transcript.v.1.x.txt``, lines ``path|original
  script|expanded script|decomposed script|duration|English translation``; the
  expanded script (column 3) is used; audio paths are relative to the folder.
* filelist [``filelist``]: a text file of ``path|text`` or ``path|text|speaker``
  lines; relative audio paths are relative to the filelist's folder; a path without an
  extension (``clips/0001``) is the audio file of that name.
* mimic-recording-studio [``mimic``]: a ``{uuid}-metadata.txt`` file with lines
  ``wavfile|text|length`` beside the wav files (the studio writes both to
  ``backend/audio_files/{uuid}/``). The path may be that folder, the ``audio_files``
  folder, the ``backend`` folder, the studio's checkout, or the metadata file itself;
  the speaker is the uuid.

Audio paths written on Windows (``clips\\0001.wav``, ``C:\\Users\\me\\tts\\clips\\0001.wav``)
are read with ``\\`` as the separator; a drive path is looked for under the transcript's
folder by its trailing folders (``clips/0001.wav``, then ``0001.wav``).
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PureWindowsPath

__all__ = [
    "FORMATS",
    "DatasetFormatError",
    "DatasetScan",
    "MalformedLine",
    "MalformedLineError",
    "Utterance",
    "detect_format",
    "read_dataset",
    "scan_dataset",
]

FORMATS = ("ljspeech", "kss", "filelist", "mimic")

_KSS_PATTERN = "transcript.v.*.txt"
_MIMIC_SUFFIX = "-metadata.txt"
# Audio an LJSpeech folder's wavs/ may hold instead of .wav (what libsndfile or PyAV decode).
_AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif")


@dataclass
class Utterance:
    """One clip of a dataset: where its audio is and what is said in it."""

    id: str
    audio_path: Path
    text: str
    speaker: str = ""


@dataclass(frozen=True)
class MalformedLine:
    """A transcript line that could not be parsed."""

    source: Path
    line_number: int
    reason: str
    line: str = ""

    @property
    def message(self) -> str:
        return f"{self.source}:{self.line_number}: {self.reason}"


@dataclass
class DatasetScan:
    """What a reader found: the utterances, the malformed lines, and the format."""

    format: str
    utterances: list[Utterance] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)


class DatasetFormatError(ValueError):
    """The path is not a dataset in any known format (or not in the one asked for)."""


class MalformedLineError(ValueError):
    """A transcript line could not be parsed; the message names the file and line."""

    def __init__(self, malformed: list[MalformedLine]) -> None:
        self.malformed = malformed
        first = malformed[0]
        more = f" (and {len(malformed) - 1} more malformed lines)" if len(malformed) > 1 else ""
        super().__init__(f"malformed line {first.message}{more}")


# --------------------------------------------------------------------------- public API


def read_dataset(path: str | Path, format: str = "auto") -> list[Utterance]:
    """Read a dataset's utterances; raise :class:`MalformedLineError` on any bad line."""
    scan = scan_dataset(path, format)
    if scan.malformed:
        raise MalformedLineError(scan.malformed)
    return scan.utterances


def scan_dataset(path: str | Path, format: str = "auto") -> DatasetScan:
    """Read a dataset, collecting malformed lines instead of stopping at them."""
    path = Path(path)
    if not path.exists():
        raise DatasetFormatError(f"dataset not found: {path}")
    if format == "auto":
        format = detect_format(path)
    readers = {
        "ljspeech": _read_ljspeech,
        "kss": _read_kss,
        "filelist": _read_filelist,
        "mimic": _read_mimic,
    }
    if format not in readers:
        raise DatasetFormatError(f"unknown dataset format {format!r}; known: {', '.join(FORMATS)}")
    scan = DatasetScan(format=format)
    readers[format](path, scan)
    scan.utterances = _qualify_clashing_ids(scan.utterances)
    return scan


def _qualify_clashing_ids(utterances: list[Utterance]) -> list[Utterance]:
    """Prefix the folder name to ids that two different audio files share (spk1/0001.wav and
    spk2/0001.wav become spk1-0001 and spk2-0001), so neither is rejected as a duplicate.

    Ids are file stems in filelists, KSS and mimic-recording-studio folders; a stem alone is kept
    where it is unique, so single-folder datasets keep the ids their users know. The same audio
    file listed twice keeps one id and stays a duplicate.
    """
    paths_by_id: dict[str, set[Path]] = {}
    for utt in utterances:
        paths_by_id.setdefault(utt.id, set()).add(utt.audio_path)
    clashing = {utt_id for utt_id, paths in paths_by_id.items() if len(paths) > 1}
    if not clashing:
        return utterances
    return [
        replace(utt, id=f"{utt.audio_path.parent.name}-{utt.id}") if utt.id in clashing and utt.audio_path.parent.name else utt
        for utt in utterances
    ]


def detect_format(path: str | Path) -> str:
    """Name the format of the dataset at ``path`` (a folder or a transcript file)."""
    path = Path(path)
    if path.is_file():
        return _detect_file_format(path)
    if path.is_dir():
        if (path / "metadata.csv").is_file():
            return "ljspeech"
        if _kss_transcripts(path):
            return "kss"
        if _mimic_metadata_files(path):
            return "mimic"
    filelists = _filelists_in(path) if path.is_dir() else []
    hint = f"; pass the filelist itself: {filelists[0]}" if len(filelists) == 1 else ""
    raise DatasetFormatError(
        f"{path} is not a dataset in a known format; looked for metadata.csv (LJSpeech), "
        f"{_KSS_PATTERN} (KSS), *{_MIMIC_SUFFIX} (mimic-recording-studio, also under "
        f"audio_files/*/), or a filelist file of path|text[|speaker] lines{hint}"
    )


def _filelists_in(folder: Path) -> list[Path]:
    """The .txt/.csv files in ``folder`` whose first line has ``|`` columns."""
    found = []
    for candidate in sorted(folder.iterdir()):
        if candidate.suffix.lower() not in (".txt", ".csv", ".list") or not candidate.is_file():
            continue
        with candidate.open("rb") as handle:
            first = handle.readline(4096).decode("utf-8", "replace").lstrip("\ufeff")
        if "|" in first:
            found.append(candidate)
    return found


# --------------------------------------------------------------------------- detection helpers


def _detect_file_format(path: Path) -> str:
    if zipfile.is_zipfile(path):
        raise DatasetFormatError(f"{path} is a zip archive (e.g. the studio's LJSpeech export); {_unzip_hint(path)}")
    if path.name == "metadata.csv":
        return "ljspeech"
    if path.match(_KSS_PATTERN):
        return "kss"
    if path.name.endswith(_MIMIC_SUFFIX):
        return "mimic"
    return "filelist"


def _unzip_hint(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        folders = sorted({name.rpartition("/")[0] for name in archive.namelist() if name.rpartition("/")[2] == "metadata.csv"})
    target = path.parent / folders[0] if len(folders) == 1 and folders[0] else path.parent
    return f"unzip it (cd {path.parent} && unzip {path.name}) and pass the folder: {target}"


def _kss_transcripts(folder: Path) -> list[Path]:
    return sorted(folder.glob(_KSS_PATTERN), key=_version_key)


def _version_key(path: Path) -> tuple:
    # transcript.v.1.4.txt sorts after transcript.v.1.10.txt as text; compare numbers.
    return tuple(int(part) if part.isdigit() else -1 for part in path.name.split("."))


def _mimic_metadata_files(folder: Path) -> list[Path]:
    patterns = [f"*{_MIMIC_SUFFIX}", f"*/*{_MIMIC_SUFFIX}", f"audio_files/*/*{_MIMIC_SUFFIX}",
                f"backend/audio_files/*/*{_MIMIC_SUFFIX}"]
    for pattern in patterns:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return found
    return []


# --------------------------------------------------------------------------- line reading


def _numbered_lines(path: Path, scan: DatasetScan):
    """Yield (line number, stripped line) for the non-blank lines of a UTF-8 file.

    A line that is not valid UTF-8 is recorded as malformed and skipped.
    """
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            reason = f"not UTF-8 (byte {error.start}): save it as UTF-8 (Excel: 'CSV UTF-8')"
            scan.malformed.append(MalformedLine(path, number, reason, repr(raw[:80])))
            continue
        line = line.strip()
        if line:
            yield number, line


def _malformed(scan: DatasetScan, path: Path, number: int, reason: str, line: str) -> None:
    scan.malformed.append(MalformedLine(path, number, reason, line[:200]))


_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _resolve(base: Path, audio: str) -> Path:
    if _WINDOWS_DRIVE.match(audio):
        return _windows_absolute(base, PureWindowsPath(audio))
    audio_path = Path(audio.replace("\\", "/"))
    return audio_path if audio_path.is_absolute() else base / audio_path


def _windows_absolute(base: Path, audio: PureWindowsPath) -> Path:
    """A Windows drive path (the dataset copied from a Windows machine): the first of its tails
    (clips/0001.wav, then 0001.wav) found under ``base``; the path as written when none is."""
    parts = audio.parts[1:]
    for start in range(len(parts)):
        candidate = base.joinpath(*parts[start:])
        if candidate.is_file():
            return candidate
    return Path(str(audio))


def _audio_stem(audio: str) -> str:
    return PureWindowsPath(audio).stem if "\\" in audio else Path(audio).stem


def _audio_file(folder: Path, stem: str) -> Path | None:
    """The audio file ``folder/stem.*`` with the first of the known extensions, lower case then
    upper case (Windows recorders write ``.WAV``); None when there is none."""
    for suffix in (*_AUDIO_SUFFIXES, *(suffix.upper() for suffix in _AUDIO_SUFFIXES)):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _with_audio_suffix(path: Path) -> Path:
    """A path written without its extension (``clips/0001``): the audio file of that name."""
    if path.suffix or path.exists():
        return path
    return _audio_file(path.parent, path.name) or path


def _ljspeech_audio(wavs: Path, utt_id: str) -> tuple[str, Path]:
    """(id, audio path) for an LJSpeech id: ``wavs/{id}.wav``, else another audio format there,
    else the clip beside metadata.csv (a folder of recordings without ``wavs/``); an id written
    as a file name (``0001.wav``) is its stem."""
    if Path(utt_id).suffix.lower() in _AUDIO_SUFFIXES:
        utt_id = Path(utt_id).stem
    found = _audio_file(wavs, utt_id) or _audio_file(wavs.parent, utt_id)
    return utt_id, found or wavs / f"{utt_id}.wav"


# First-row names that mark a spreadsheet's header row (not a clip).
_HEADER_NAMES = {"id", "file", "filename", "file_name", "path", "audio", "wav", "name", "audio_file"}


def _spreadsheet_rows(lines: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], str | None]:
    """The lines of a transcript and its spreadsheet delimiter (None for ``|`` lines), a
    spreadsheet's header row left out."""
    delimiter = _spreadsheet_delimiter(lines)
    if delimiter is not None and _metadata_fields(lines[0][1], delimiter)[0].strip().lower() in _HEADER_NAMES:
        lines = lines[1:]
    return lines, delimiter


def _spreadsheet_delimiter(lines: list[tuple[int, str]]) -> str | None:
    """The separator of a metadata.csv saved from a spreadsheet (no '|' on any line), else None."""
    if not lines or any("|" in line for _, line in lines):
        return None
    first = lines[0][1]
    return next((delimiter for delimiter in ("\t", ",", ";") if delimiter in first), None)


def _metadata_fields(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split("|")
    fields = next(csv.reader([line], delimiter=delimiter))
    while len(fields) > 2 and not fields[-1].strip():
        fields.pop()  # a spreadsheet pads each row to its widest one
    return fields


# --------------------------------------------------------------------------- readers


def _read_ljspeech(path: Path, scan: DatasetScan) -> None:
    metadata = path if path.is_file() else path / "metadata.csv"
    folder = metadata.parent
    lines, delimiter = _spreadsheet_rows(list(_numbered_lines(metadata, scan)))
    for number, line in lines:
        fields = _metadata_fields(line, delimiter)
        if len(fields) not in (2, 3):
            _malformed(scan, metadata, number, f"expected id|text or id|raw|normalized, got {len(fields)} fields", line)
            continue
        utt_id = fields[0].strip()
        if not utt_id:
            _malformed(scan, metadata, number, "empty id", line)
            continue
        text = fields[1].strip()
        if len(fields) == 3 and fields[2].strip():
            text = fields[2].strip()
        utt_id, audio_path = _ljspeech_audio(folder / "wavs", utt_id)
        scan.utterances.append(Utterance(utt_id, audio_path, text))


def _read_kss(path: Path, scan: DatasetScan) -> None:
    if path.is_file():
        transcript = path
    else:
        transcripts = _kss_transcripts(path)
        if not transcripts:
            raise DatasetFormatError(f"no {_KSS_PATTERN} in {path}")
        transcript = transcripts[-1]
    folder = transcript.parent
    for number, line in _numbered_lines(transcript, scan):
        fields = line.split("|")
        # KSS 1.4 has 6 columns; the English translation (6th) is missing in some copies.
        if len(fields) not in (5, 6):
            _malformed(scan, transcript, number, f"expected 6 |-separated columns, got {len(fields)}", line)
            continue
        audio = fields[0].strip()
        if not audio:
            _malformed(scan, transcript, number, "empty audio path", line)
            continue
        scan.utterances.append(Utterance(_audio_stem(audio), _resolve(folder, audio), fields[2].strip()))


def _read_filelist(path: Path, scan: DatasetScan) -> None:
    if not path.is_file():
        raise DatasetFormatError(f"a filelist must be a file, got the folder {path}")
    folder = path.parent
    lines, delimiter = _spreadsheet_rows(list(_numbered_lines(path, scan)))
    for number, line in lines:
        fields = _metadata_fields(line, delimiter)
        if len(fields) not in (2, 3):
            _malformed(scan, path, number, f"expected path|text or path|text|speaker, got {len(fields)} fields", line)
            continue
        audio = fields[0].strip()
        if not audio:
            _malformed(scan, path, number, "empty audio path", line)
            continue
        speaker = fields[2].strip() if len(fields) == 3 else ""
        audio_path = _with_audio_suffix(_resolve(folder, audio))
        scan.utterances.append(Utterance(_audio_stem(audio), audio_path, fields[1].strip(), speaker))


def _read_mimic(path: Path, scan: DatasetScan) -> None:
    files = [path] if path.is_file() else _mimic_metadata_files(path)
    if not files:
        raise DatasetFormatError(f"no *{_MIMIC_SUFFIX} in {path} or its audio_files/*/ folders")
    for metadata in files:
        speaker = metadata.name[: -len(_MIMIC_SUFFIX)]
        _read_mimic_file(metadata, speaker, scan)


_LENGTH_RE = re.compile(r"^\s*\d+\s*$")


def _read_mimic_file(metadata: Path, speaker: str, scan: DatasetScan) -> None:
    folder = metadata.parent
    for number, line in _numbered_lines(metadata, scan):
        # The studio writes the prompt unescaped, so split off the first and last fields only.
        wav, sep, rest = line.partition("|")
        text, sep2, length = rest.rpartition("|")
        if not sep or not sep2 or not _LENGTH_RE.match(length):
            _malformed(scan, metadata, number, "expected wavfile|text|length", line)
            continue
        wav = wav.strip()
        if not wav:
            _malformed(scan, metadata, number, "empty wav file name", line)
            continue
        scan.utterances.append(Utterance(Path(wav).stem, _mimic_audio(folder, speaker, wav), text.strip(), speaker))


def _mimic_audio(folder: Path, speaker: str, wav: str) -> Path:
    beside = _resolve(folder, wav)
    nested = folder / "audio_files" / speaker / wav
    # A metadata file copied out of audio_files/{uuid}/ still finds its clips there.
    return nested if not beside.exists() and nested.exists() else beside
