from pathlib import Path

import pytest

from moksori.data.readers import (
    DatasetFormatError,
    MalformedLineError,
    Utterance,
    detect_format,
    read_dataset,
    scan_dataset,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_ljspeech_two_columns(tmp_path):
    write(tmp_path / "metadata.csv", "a001|안녕하세요.\na002|Hello there.\n\n")
    utterances = read_dataset(tmp_path)
    assert detect_format(tmp_path) == "ljspeech"
    assert utterances == [
        Utterance("a001", tmp_path / "wavs" / "a001.wav", "안녕하세요."),
        Utterance("a002", tmp_path / "wavs" / "a002.wav", "Hello there."),
    ]


def test_ljspeech_three_columns_prefers_normalized_unless_empty(tmp_path):
    write(
        tmp_path / "metadata.csv",
        "\ufeffLJ001-0001|Printing, in 1455|Printing, in fourteen fifty-five\nLJ001-0002|raw only|\n",
    )
    utterances = read_dataset(tmp_path / "metadata.csv")
    assert [u.id for u in utterances] == ["LJ001-0001", "LJ001-0002"]
    assert utterances[0].text == "Printing, in fourteen fifty-five"
    assert utterances[1].text == "raw only"
    assert utterances[0].speaker == ""


def test_kss_uses_expanded_script_and_relative_paths(tmp_path):
    write(
        tmp_path / "transcript.v.1.4.txt",
        "1/1_0000.wav|그는 괜찮은 척하려고 애쓰는 것 같았다.|그는 괜찮은 척하려고 애쓰는 것 같았다.|"
        "그는 괜찮은 척하려고 애쓰는 것 같았다.|3.5|He seemed to be pretending to be okay.\n"
        "1/1_0001.wav|3시에 만나요.|세 시에 만나요.|세 시에 만나요.|1.2|See you at three.\n",
    )
    utterances = read_dataset(tmp_path)
    assert detect_format(tmp_path) == "kss"
    assert utterances[1] == Utterance("1_0001", tmp_path / "1" / "1_0001.wav", "세 시에 만나요.")


def test_kss_picks_newest_transcript_version(tmp_path):
    row = "1/1_0000.wav|가|{}|가|1.0|a\n"
    write(tmp_path / "transcript.v.1.3.txt", row.format("old"))
    write(tmp_path / "transcript.v.1.10.txt", row.format("new"))
    assert read_dataset(tmp_path)[0].text == "new"


def test_filelist_with_and_without_speaker(tmp_path):
    absolute = tmp_path / "elsewhere" / "c.wav"
    filelist = write(
        tmp_path / "lists" / "train.txt",
        f"wavs/a.wav|first text\nwavs/b.wav|second text|spk2\n{absolute}|third|spk3\n",
    )
    assert detect_format(filelist) == "filelist"
    utterances = read_dataset(filelist)
    assert utterances == [
        Utterance("a", tmp_path / "lists" / "wavs" / "a.wav", "first text", ""),
        Utterance("b", tmp_path / "lists" / "wavs" / "b.wav", "second text", "spk2"),
        Utterance("c", absolute, "third", "spk3"),
    ]


def test_speaker_folders_with_the_same_file_names_keep_every_clip(tmp_path):
    filelist = write(
        tmp_path / "train.txt",
        "spk1/0001.wav|one|spk1\nspk2/0001.wav|two|spk2\nspk1/0002.wav|three|spk1\nspk1/0001.wav|again|spk1\n",
    )
    ids = [utt.id for utt in read_dataset(filelist)]
    # The same file listed twice keeps one id, so preprocessing still rejects it as a duplicate.
    assert ids == ["spk1-0001", "spk2-0001", "0002", "spk1-0001"]


def test_mimic_recording_studio_layout(tmp_path):
    uuid_a = "1f3a2b4c-0000-4000-8000-000000000001"
    uuid_b = "1f3a2b4c-0000-4000-8000-000000000002"
    base = tmp_path / "backend" / "audio_files"
    write(base / uuid_a / f"{uuid_a}-metadata.txt", "9e107d9d372bb6826bd81d3542a419d6.wav|오늘은 맑아요.|8\n")
    write(base / uuid_b / f"{uuid_b}-metadata.txt", "e4d909c290d0fb1ca068ffaddf22cbd0.wav|a|b text|8\n")
    for root in (tmp_path / "backend", base, base / uuid_a):
        assert detect_format(root) == "mimic"
    utterances = read_dataset(tmp_path / "backend")
    assert utterances[0] == Utterance(
        "9e107d9d372bb6826bd81d3542a419d6",
        base / uuid_a / "9e107d9d372bb6826bd81d3542a419d6.wav",
        "오늘은 맑아요.",
        uuid_a,
    )
    # The prompt is written unescaped: a '|' inside it stays in the text.
    assert utterances[1].text == "a|b text"
    assert utterances[1].speaker == uuid_b


def test_malformed_line_names_file_and_line(tmp_path):
    metadata = write(tmp_path / "metadata.csv", "a|ok\nb|too|many|fields\nc|fine\n")
    with pytest.raises(MalformedLineError) as error:
        read_dataset(tmp_path)
    assert f"{metadata}:2" in str(error.value)
    scan = scan_dataset(tmp_path)
    assert [u.id for u in scan.utterances] == ["a", "c"]
    assert [(m.source, m.line_number) for m in scan.malformed] == [(metadata, 2)]


@pytest.mark.parametrize(
    ("name", "body", "line"),
    [
        ("transcript.v.1.4.txt", "1/a.wav|x|y|z|1.0|t\n1/b.wav|only two\n", 2),
        ("list.txt", "a.wav|text\n\nno separator here\n", 3),
        ("u-metadata.txt", "a.wav|text|4\nb.wav|text|not-a-number\n", 2),
    ],
)
def test_malformed_lines_in_other_formats(tmp_path, name, body, line):
    path = write(tmp_path / name, body)
    scan = scan_dataset(path)
    assert len(scan.utterances) == 1
    assert [m.line_number for m in scan.malformed] == [line]
    with pytest.raises(MalformedLineError, match=f"{name}:{line}"):
        read_dataset(path)


def test_undecodable_line_is_malformed_not_fatal(tmp_path):
    (tmp_path / "metadata.csv").write_bytes("a|좋아요\n".encode() + b"b|\xff\xfe bad\n")
    scan = scan_dataset(tmp_path)
    assert [u.id for u in scan.utterances] == ["a"]
    assert "not UTF-8" in scan.malformed[0].reason


def test_unknown_folder_says_what_was_looked_for(tmp_path):
    write(tmp_path / "notes.txt", "nothing here")
    with pytest.raises(DatasetFormatError, match="metadata.csv.*transcript.v.*metadata.txt"):
        read_dataset(tmp_path)
    with pytest.raises(DatasetFormatError, match="not found"):
        read_dataset(tmp_path / "absent")
    with pytest.raises(DatasetFormatError, match="unknown dataset format"):
        read_dataset(tmp_path, format="vctk")


def test_missing_audio_is_not_a_reader_error(tmp_path):
    write(tmp_path / "metadata.csv", "gone|no audio for this one\n")
    utterance = read_dataset(tmp_path)[0]
    assert not utterance.audio_path.exists()


def test_mimic_metadata_copied_out_still_finds_its_audio(tmp_path):
    uuid = "abcd-1234"
    write(tmp_path / f"{uuid}-metadata.txt", "x1.wav|첫 문장|4\nx2.wav|둘째 문장|5\n")
    nested = tmp_path / "audio_files" / uuid / "x1.wav"
    nested.parent.mkdir(parents=True)
    nested.write_bytes(b"")
    first, second = read_dataset(tmp_path)
    assert first.audio_path == nested
    assert second.audio_path == tmp_path / "x2.wav"  # absent in both places: reported as missing later


def test_ljspeech_finds_flac_and_mp3_in_wavs_and_ids_written_with_extension(tmp_path):
    write(tmp_path / "metadata.csv", "a|flac clip\nb.wav|id written as a file name\nc|no audio at all\nd|upper\n")
    for name in ("a.flac", "b.wav", "d.WAV"):  # d.WAV: a Windows recorder's upper-case extension
        write(tmp_path / "wavs" / name, "x")
    a, b, c, d = read_dataset(tmp_path)
    assert a == Utterance("a", tmp_path / "wavs" / "a.flac", "flac clip")
    assert b == Utterance("b", tmp_path / "wavs" / "b.wav", "id written as a file name")
    assert c.audio_path == tmp_path / "wavs" / "c.wav"  # reported as missing by preprocessing
    assert d.audio_path == tmp_path / "wavs" / "d.WAV"


def test_ljspeech_metadata_saved_by_excel_as_comma_separated_csv(tmp_path):
    # Excel's "CSV UTF-8": a BOM, CRLF line ends, commas, quotes around text that holds a comma,
    # and every row padded to the widest one.
    (tmp_path / "metadata.csv").write_bytes(
        '\ufeffa001,"네, 알겠습니다.",\r\na002,오늘은 맑아요.,\r\na003,"그가 ""안녕""이라고 했다.",\r\n'.encode()
    )
    utterances = read_dataset(tmp_path)
    assert [(u.id, u.text) for u in utterances] == [
        ("a001", "네, 알겠습니다."), ("a002", "오늘은 맑아요."), ("a003", '그가 "안녕"이라고 했다.'),
    ]


def test_ljspeech_metadata_in_a_legacy_encoding_says_how_to_save_it(tmp_path):
    (tmp_path / "metadata.csv").write_bytes("a|좋아요\n".encode("cp949"))
    scan = scan_dataset(tmp_path)
    assert "save it as UTF-8" in scan.malformed[0].reason


def test_filelist_written_on_windows(tmp_path):
    clip = tmp_path / "clips" / "a.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"x")
    filelist = write(tmp_path / "list.txt", "clips\\a.wav|relative\nC:\\Users\\me\\tts\\clips\\a.wav|absolute\n")
    relative, absolute = read_dataset(filelist)
    assert relative == Utterance("a", clip, "relative")
    # A drive path is looked for under the filelist's folder by its trailing folders.
    assert absolute == Utterance("a", clip, "absolute")


def test_mimic_recording_studio_checkout_root(tmp_path):
    uuid = "1f3a2b4c-0000-4000-8000-000000000001"
    write(tmp_path / "backend" / "audio_files" / uuid / f"{uuid}-metadata.txt", "x.wav|첫 문장|4\n")
    assert detect_format(tmp_path) == "mimic"
    assert read_dataset(tmp_path)[0].speaker == uuid


def test_spreadsheet_csv_header_row_is_skipped_and_a_filelist_may_be_one(tmp_path):
    (tmp_path / "metadata.csv").write_bytes("\ufeffID,Text\r\na001,안녕하세요.\r\n".encode())
    assert [(u.id, u.text) for u in read_dataset(tmp_path)] == [("a001", "안녕하세요.")]
    filelist = tmp_path / "list.csv"
    filelist.write_bytes('\ufeffpath;text\r\nclips\\a.wav;"네, 좋아요."\r\n'.encode())
    assert read_dataset(filelist) == [Utterance("a", tmp_path / "clips" / "a.wav", "네, 좋아요.")]


def test_ljspeech_clips_beside_metadata_without_a_wavs_folder(tmp_path):
    write(tmp_path / "metadata.csv", "a|beside the transcript\nb|nowhere\n")
    (tmp_path / "a.mp3").write_bytes(b"x")
    a, b = read_dataset(tmp_path)
    assert a.audio_path == tmp_path / "a.mp3"
    assert b.audio_path == tmp_path / "wavs" / "b.wav"  # the missing clip is named where LJSpeech keeps it


def test_filelist_of_ids_without_extension_finds_the_clips(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.flac").write_bytes(b"x")
    filelist = write(tmp_path / "transcript.txt", "clips/a|첫 문장\nclips/b|없는 파일\n")
    a, b = read_dataset(filelist)
    assert a == Utterance("a", clips / "a.flac", "첫 문장")
    assert b.audio_path == clips / "b"  # reported as missing, as written


def test_a_zip_archive_says_to_unzip_it(tmp_path):
    import zipfile

    archive = tmp_path / "studio_export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("my-voice-3/metadata.csv", "a|안녕\n")
    with pytest.raises(DatasetFormatError, match="zip archive.*unzip") as error:
        scan_dataset(archive)
    assert str(error.value).endswith(f"pass the folder: {tmp_path / 'my-voice-3'}")
