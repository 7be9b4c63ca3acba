"""The studio's JSON API, step by step: accounts, voices, prompt sets, takes and their verdicts,
trim, progress, LJSpeech export and deletion."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import soundfile
from sqlalchemy import select

from moksori.data.readers import read_dataset
from moksori.store import Database, Recording, Voice
from moksori.studio import StudioService

# --- voices and accounts -----------------------------------------------------------------------


def test_page_and_static_files_are_served(client):
    page = client.get("/studio")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/studio/static/studio.js" in page.text
    for name in ("studio.js", "studio.css", "recorder-worklet.js"):
        assert client.get(f"/studio/static/{name}").status_code == 200
    assert "registerProcessor" in client.get("/studio/static/recorder-worklet.js").text
    assert client.get("/studio/static/..%2Fapp.py").status_code == 404
    assert client.get("/studio/static/index2.html").status_code == 404


def test_create_list_and_get_voice(client, tools):
    voice_id = tools.new_voice(client, "지민", description="차분한 목소리")
    voices = client.get("/api/studio/voices").json()["voices"]
    assert [(v["id"], v["name"], v["language"], v["sample_rate"]) for v in voices] == [(voice_id, "지민", "ko", 22050)]
    voice = client.get(f"/api/studio/voices/{voice_id}").json()
    assert voice["description"] == "차분한 목소리" and voice["trained"] is False
    assert voice["progress"]["kept_takes"] == 0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "", "language": "ko"}, 400, "empty"),
        ({"name": "x", "language": "fr"}, 400, "not supported"),
        ({"name": "a\x00b", "language": "ko"}, 400, "control"),
    ],
)
def test_bad_voice_is_refused(client, body, status, words):
    response = client.post("/api/studio/voices", json=body)
    assert response.status_code == status and words in response.json()["error"]["message"]


def test_duplicate_voice_name_is_a_conflict(client, tools):
    tools.new_voice(client, "민수")
    response = client.post("/api/studio/voices", json={"name": "민수", "language": "ko"})
    assert response.status_code == 409 and "already a voice named" in response.json()["error"]["message"]


def test_accounts_own_their_voices(site, tools):
    anonymous, alice, bob = site.client(), site.client(), site.client()
    signup = alice.post("/api/studio/account/signup", json={"username": "alice", "password": "correct horse"})
    assert signup.status_code == 201 and "moksori_studio" in signup.cookies
    assert alice.get("/api/studio/account").json()["user"]["username"] == "alice"
    bob.post("/api/studio/account/signup", json={"username": "bob", "password": "battery staple"})
    alice_voice = tools.new_voice(alice, "앨리스", private=True)
    tools.new_voice(anonymous, "모두의 목소리")

    assert [v["name"] for v in alice.get("/api/studio/voices").json()["voices"]] == ["앨리스"]
    assert [v["name"] for v in anonymous.get("/api/studio/voices").json()["voices"]] == ["모두의 목소리"]
    assert bob.get("/api/studio/voices").json()["voices"] == []
    assert bob.get(f"/api/studio/voices/{alice_voice}").status_code == 404
    assert anonymous.delete(f"/api/studio/voices/{alice_voice}?confirm=앨리스").status_code == 404
    assert alice.get(f"/api/studio/voices/{alice_voice}").json()["private"] is True

    assert alice.post("/api/studio/account/signout").status_code == 200
    assert alice.get("/api/studio/account").json()["user"] is None
    again = alice.post("/api/studio/account/signin", json={"username": "ALICE", "password": "correct horse"})
    assert again.status_code == 200 and [v["id"] for v in alice.get("/api/studio/voices").json()["voices"]] == [alice_voice]


def test_bad_sign_in_and_sign_up(client):
    client.post("/api/studio/account/signup", json={"username": "carol", "password": "long enough"})
    assert client.post("/api/studio/account/signin", json={"username": "carol", "password": "wrong one!"}).status_code == 401
    taken = client.post("/api/studio/account/signup", json={"username": "carol", "password": "long enough"})
    assert taken.status_code == 409
    short = client.post("/api/studio/account/signup", json={"username": "dave", "password": "short"})
    assert short.status_code == 400 and "too short" in short.json()["error"]["message"]


def test_forged_session_cookie_is_anonymous(client, tools):
    client.post("/api/studio/account/signup", json={"username": "erin", "password": "long enough"})
    user_id = client.get("/api/studio/account").json()["user"]["id"]
    real = client.cookies.get("moksori_studio")
    # The jar would send the real cookie beside a forged one: replace it. Old signed format, then a token-like guess.
    for forged in (f"{user_id}.9999999999.{'0' * 64}", real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")):
        client.cookies.clear()
        client.cookies.set("moksori_studio", forged)
        assert client.get("/api/studio/account").json()["user"] is None


def test_anonymous_use_can_be_switched_off(make_site, tools):
    site = make_site(allow_anonymous=False)
    client = site.client()
    refused = client.get("/api/studio/voices")
    assert refused.status_code == 401 and "sign in" in refused.json()["error"]["message"]
    assert client.get("/api/studio/account").json() == {"user": None, "anonymous_allowed": False, "signup_allowed": True}
    client.post("/api/studio/account/signup", json={"username": "frank", "password": "long enough"})
    assert client.get("/api/studio/voices").status_code == 200


def test_studio_without_database_answers_503(site):
    client = site.client(db_url=None)
    response = client.get("/api/studio/voices")
    assert response.status_code == 503 and "database" in response.json()["error"]["message"]
    assert client.get("/studio").status_code == 200


# --- prompt sets -------------------------------------------------------------------------------


def test_builtin_prompt_sets(client, tools):
    sets = {s["language"]: s for s in client.get("/api/studio/prompt-sets").json()["prompt_sets"]}
    assert sets["ko"]["source"] == "builtin" and sets["ko"]["prompts"] > 500
    assert sets["en"]["prompts"] > 100
    # Listing again does not create the sets again.
    assert len(client.get("/api/studio/prompt-sets").json()["prompt_sets"]) == 2
    prompts = client.get(f"/api/studio/prompt-sets/{sets['ko']['id']}/prompts").json()["prompts"]
    assert prompts[0]["text"] == "안녕하세요, 만나서 반갑습니다." and prompts[0]["takes"] == 0


def test_upload_prompt_set_both_layouts(client):
    text = "첫 번째 문장입니다.\t10\n# a comment\n\n두 번째 문장.\n세 번째 문장\tabc\n"
    response = client.post("/api/studio/prompt-sets", data={"name": "내 문장", "language": "ko"},
                           files={"file": ("../../etc/passwd", text.encode(), "text/plain")})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["prompts"] == 3 and created["source"] == "upload" and created["name"] == "내 문장"
    assert len(created["warnings"]) == 1 and "not a whole number" in created["warnings"][0]
    prompts = client.get(f"/api/studio/prompt-sets/{created['id']}/prompts").json()["prompts"]
    assert [p["text"] for p in prompts] == ["첫 번째 문장입니다.", "두 번째 문장.", "세 번째 문장"]
    listed = client.get("/api/studio/prompt-sets").json()["prompt_sets"]
    assert created["id"] in [s["id"] for s in listed]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("좋은 줄\n".encode() + b"\xff\xfe bad\n", "not UTF-8 text at line 2"),
        (b"\n# only a comment\n", "no sentences"),
        (b"", "no sentences"),
    ],
)
def test_bad_prompt_file_is_refused(client, data, words):
    response = client.post("/api/studio/prompt-sets", data={"name": "bad", "language": "ko"},
                           files={"file": ("bad.txt", data, "text/plain")})
    assert response.status_code == 400 and words in response.json()["error"]["message"]


def test_prompt_upload_needs_a_file(client):
    response = client.post("/api/studio/prompt-sets", data={"name": "x", "language": "ko"},
                           files={"other": ("a.txt", b"hello", "text/plain")})
    assert response.status_code == 400 and "'file'" in response.json()["error"]["message"]


# --- takes -------------------------------------------------------------------------------------


@pytest.fixture
def voice(client, tools):
    return tools.new_voice(client)


@pytest.fixture
def ko_prompts(client, tools):
    return tools.prompt_ids(client, tools.builtin_ko(client))


def _stored(site, recording):
    return site.studio.data_dir.resolve() / _row(site, recording["id"]).path


def _row(site, recording_id):
    with Database(site.db_url) as db, db.session() as session:
        return session.get(Recording, recording_id)


def test_good_take_is_stored_kept_and_judged(site, client, tools, voice, ko_prompts, spoken):
    text, wave = spoken[0]
    response = tools.upload(client, voice, ko_prompts[text], tools.wav_file(wave))
    assert response.status_code == 201, response.text
    result = response.json()
    take = result["recording"]
    assert result["ok"] is True and result["problems"] == [] and result["resampled"] is False
    assert take["verdict"] == "ok" and take["kept"] is True and take["take"] == 1
    assert take["duration_s"] == pytest.approx(len(wave) / 22050, abs=1e-3)
    path = _stored(site, take)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert path.name != "take.wav" and path.is_relative_to(site.studio.data_dir.resolve() / "voices" / str(voice))
    audio = client.get(take["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content == path.read_bytes()


def test_44k_stereo_float_take_is_resampled(site, client, tools, voice, ko_prompts, spoken):
    from moksori.audio import resample

    text, wave = spoken[1]
    high = resample(wave, 22050, 44100)
    stereo = np.stack([high, high * 0.5], axis=1)
    response = tools.upload(client, voice, ko_prompts[text], tools.wav_file(stereo, 44100, "FLOAT"))
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["resampled"] is True and result["source_sample_rate"] == 44100
    assert result["recording"]["sample_rate"] == 22050
    stored, rate = soundfile.read(str(_stored(site, result["recording"])))
    assert rate == 22050 and stored.ndim == 1
    assert abs(len(stored) - len(wave)) <= 2


def test_flac_take_is_accepted(client, tools, voice, ko_prompts, spoken):
    text, wave = spoken[2]
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, 22050, format="FLAC")
    response = tools.upload(client, voice, ko_prompts[text], buffer.getvalue(), name="take.flac")
    assert response.status_code == 201 and response.json()["ok"] is True


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "empty_upload", "empty"),
        (b"this is not audio at all" * 10, "invalid_audio", "not usable audio"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "invalid_audio", "not usable audio"),
    ],
)
def test_bad_uploads_are_400(site, client, tools, voice, ko_prompts, data, code, words):
    response = tools.upload(client, voice, next(iter(ko_prompts.values())), data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]
    assert str(site.root) not in error["message"]  # no server paths in messages
    _assert_no_files(site, voice)


def _assert_no_files(site, voice_id):
    takes = site.studio.data_dir / "voices" / str(voice_id) / "takes"
    assert not takes.exists() or list(takes.iterdir()) == []
    assert list((site.studio.data_dir / "tmp").iterdir()) == []


def test_upload_over_the_size_limit_is_413(make_site, tools, spoken):
    site = make_site(max_upload_bytes=100_000)
    client = site.client()
    voice = tools.new_voice(client)
    prompt = next(iter(tools.prompt_ids(client, tools.builtin_ko(client)).values()))
    huge = tools.wav_file(np.zeros(300_000, dtype=np.float32))
    response = tools.upload(client, voice, prompt, huge)
    assert response.status_code == 413 and "limit" in response.json()["error"]["message"]
    # Without a Content-Length (chunked), the limit is enforced while the body streams in.
    body, content_type = _multipart({"prompt_id": str(prompt)}, "audio", huge)
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    streamed = client.post(f"/api/studio/voices/{voice}/takes", content=chunks, headers={"content-type": content_type})
    assert streamed.status_code == 413
    _assert_no_files(site, voice)


def _multipart(fields, file_field, data):
    boundary = "moksori-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="a.wav"\r\n'
                 "Content-Type: audio/wav\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_take_longer_than_the_limit_is_400(make_site, tools):
    site = make_site(max_take_s=3.0)
    client = site.client()
    voice = tools.new_voice(client)
    prompt = next(iter(tools.prompt_ids(client, tools.builtin_ko(client)).values()))
    response = tools.upload(client, voice, prompt, tools.wav_file(np.zeros(22050 * 4, dtype=np.float32)))
    assert response.status_code == 400 and "at most 3 s" in response.json()["error"]["message"]


def test_upload_needs_multipart_fields(client, tools, voice, ko_prompts):
    prompt = next(iter(ko_prompts.values()))
    no_file = client.post(f"/api/studio/voices/{voice}/takes", data={"prompt_id": str(prompt)})
    assert no_file.status_code == 400
    bad_prompt = tools.upload(client, voice, 10**9, b"x")
    assert bad_prompt.status_code == 404 and "no prompt" in bad_prompt.json()["error"]["message"]
    not_multipart = client.post(f"/api/studio/voices/{voice}/takes", content=b"RIFF", headers={"content-type": "audio/wav"})
    assert not_multipart.status_code == 400 and "multipart" in not_multipart.json()["error"]["message"]
    other_voice = tools.upload(client, 10**9, prompt, b"x")
    assert other_voice.status_code == 404


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda w: np.clip(w * 20.0, -1.0, 1.0), "clipped"),
        (lambda w: np.zeros_like(w), "silent"),
        (lambda w: w * (10 ** (-45 / 20)) / max(1e-9, float(np.sqrt(np.mean(w**2)))), "too_quiet"),
        (lambda w: np.concatenate([np.zeros(22050 * 2, np.float32), w]), "late_start"),
        (lambda w: w[: w.size // 2], "cut_off_end"),
        (lambda w: w + np.random.default_rng(0).normal(0, 0.05, w.size).astype(np.float32), "noisy"),
        (lambda w: w[:4000], "too_short"),
    ],
)
def test_problem_takes_get_a_verdict_and_are_not_kept(client, tools, voice, ko_prompts, spoken, make, code):
    text, wave = spoken[0]
    result = tools.upload(client, voice, ko_prompts[text], tools.wav_file(make(wave))).json()
    assert result["ok"] is False
    assert code in [p["code"] for p in result["problems"]], result["problems"]
    assert code in result["recording"]["verdict"].split(",")
    assert result["recording"]["kept"] is False


def test_redo_keep_anyway_and_delete(client, tools, voice, ko_prompts, spoken):
    text, wave = spoken[0]
    prompt = ko_prompts[text]
    first = tools.upload(client, voice, prompt, tools.wav_file(wave)).json()["recording"]
    loud = tools.upload(client, voice, prompt, tools.wav_file(np.clip(wave * 20, -1, 1))).json()["recording"]
    assert loud["take"] == 2 and loud["kept"] is False
    statuses = _prompt_status(client, tools, voice, prompt)
    assert statuses["takes"] == 2 and statuses["kept"]["id"] == first["id"] and statuses["latest"]["id"] == loud["id"]

    kept = client.patch(f"/api/studio/recordings/{loud['id']}", json={"kept": True}).json()
    assert kept["kept"] is True
    assert _prompt_status(client, tools, voice, prompt)["kept"]["id"] == loud["id"]  # only one kept take per prompt

    redo = tools.upload(client, voice, prompt, tools.wav_file(wave)).json()["recording"]
    assert redo["take"] == 3 and redo["kept"] is True
    assert _prompt_status(client, tools, voice, prompt)["kept"]["id"] == redo["id"]

    assert client.delete(f"/api/studio/recordings/{redo['id']}").status_code == 200
    assert client.get(redo["audio_url"]).status_code == 404
    assert _prompt_status(client, tools, voice, prompt)["takes"] == 2


def _prompt_status(client, tools, voice, prompt_id):
    prompts = client.get(f"/api/studio/prompt-sets/{tools.builtin_ko(client)}/prompts?voice_id={voice}").json()["prompts"]
    return next(p for p in prompts if p["id"] == prompt_id)


def test_takes_are_trimmed_when_stored_and_untrim_restores_them(site, client, tools, voice, ko_prompts, spoken):
    text, wave = spoken[0]
    padded = np.concatenate([np.zeros(22050 * 2, np.float32), wave, np.zeros(int(22050 * 1.5), np.float32)])
    take = tools.upload(client, voice, ko_prompts[text], tools.wav_file(padded)).json()["recording"]
    # Judged as recorded (a late start), stored trimmed: the trailing silence is no problem then.
    assert take["verdict"] == "late_start" and take["kept"] is False
    assert 1.8 < take["trim"]["start_s"] < 2.1 and take["duration_s"] < len(wave) / 22050 + 0.4
    trimmed_path = _stored(site, take)
    assert soundfile.info(str(trimmed_path)).duration == pytest.approx(take["duration_s"], abs=1e-3)
    original = site.studio.data_dir.resolve() / take["trim"]["original"]
    assert len(soundfile.read(str(original))[0]) == len(padded)

    undone = client.post(f"/api/studio/recordings/{take['id']}/untrim")
    assert undone.status_code == 200, undone.text
    untrimmed = undone.json()["recording"]
    assert untrimmed["duration_s"] == pytest.approx(len(padded) / 22050, abs=1e-3) and untrimmed["trim"] is None
    assert {"late_start", "trailing_silence"} <= set(untrimmed["verdict"].split(","))
    assert not trimmed_path.exists() and _stored(site, untrimmed) == original
    again = client.post(f"/api/studio/recordings/{take['id']}/untrim")
    assert again.status_code == 400 and "not trimmed" in again.json()["error"]["message"]

    response = client.post(f"/api/studio/recordings/{take['id']}/trim")
    assert response.status_code == 200, response.text
    trimmed = response.json()
    assert trimmed["ok"] is True and trimmed["recording"]["kept"] is True
    assert trimmed["recording"]["duration_s"] < len(wave) / 22050 + 0.4
    assert trimmed["recording"]["quality"]["leading_silence_s"] < 0.3
    assert not original.exists() and _stored(site, trimmed["recording"]).is_file()

    silent = tools.upload(client, voice, ko_prompts[text], tools.wav_file(np.zeros(22050, np.float32))).json()
    assert silent["recording"]["trim"] is None
    refused = client.post(f"/api/studio/recordings/{silent['recording']['id']}/trim")
    assert refused.status_code == 400 and "silent" in refused.json()["error"]["message"]


def test_the_speakers_own_rate_is_learned_from_kept_takes(client, tools, voice, ko_prompts, spoken):
    """A 19-syllable sentence with a 3.4 s pause in the middle (about 7 s of speech) is within the
    Korean prior; after five kept takes at espeak's pace it is far slower than this speaker."""
    text, wave = spoken[5]
    middle = wave.size // 2
    slow = np.concatenate([wave[:middle], np.zeros(int(22050 * 3.4), np.float32), wave[middle:]])
    first = tools.upload(client, voice, ko_prompts[text], tools.wav_file(slow)).json()
    assert first["ok"] is True and first["recording"]["quality"]["speaker_rate"] is None
    client.patch(f"/api/studio/recordings/{first['recording']['id']}", json={"kept": False})
    tools.upload_spoken(client, voice, spoken, 5)
    again = tools.upload(client, voice, ko_prompts[text], tools.wav_file(slow)).json()
    assert [p["code"] for p in again["problems"]] == ["longer_than_expected"], again["problems"]
    assert "for you (from your kept takes)" in again["problems"][0]["message"]
    assert 0.14 < again["recording"]["quality"]["speaker_rate"] < 0.22  # seconds per syllable


def test_deleting_a_trimmed_take_removes_its_untrimmed_recording(site, client, tools, voice, ko_prompts, spoken):
    text, wave = spoken[1]
    padded = np.concatenate([wave, np.zeros(22050, np.float32)])
    take = tools.upload(client, voice, ko_prompts[text], tools.wav_file(padded)).json()["recording"]
    original, trimmed = site.studio.data_dir.resolve() / take["trim"]["original"], _stored(site, take)
    assert original.is_file() and trimmed.is_file() and take["verdict"] == "ok"
    from moksori.studio import StudioService

    with Database(site.db_url) as db:
        counts = StudioService(db, site.studio, site.voices_dir).reconcile(stale_after_s=0)
    assert counts["orphan_takes"] == 0 and original.is_file()  # start-up clean-up leaves it alone
    assert client.delete(f"/api/studio/recordings/{take['id']}").status_code == 200
    assert not original.exists() and not trimmed.exists()


def test_progress_counts_kept_takes(client, tools, voice, ko_prompts, spoken):
    set_id = tools.builtin_ko(client)
    tools.upload_spoken(client, voice, spoken, 3)
    text, wave = spoken[3]
    tools.upload(client, voice, ko_prompts[text], tools.wav_file(np.zeros_like(wave)))  # silent: not kept
    progress = client.get(f"/api/studio/voices/{voice}/progress?prompt_set_id={set_id}").json()
    seconds = sum(len(w) for _, w in spoken[:3]) / 22050
    assert progress["kept_takes"] == 3 and progress["total_takes"] == 4
    assert progress["prompts_done"] == 3 and progress["prompts_total"] == len(ko_prompts)
    assert progress["recorded_minutes"] == pytest.approx(seconds / 60, abs=0.01)
    assert progress["goals"]["finetune_minutes"] == 60
    assert progress["goals"]["finetune_remaining_minutes"] == pytest.approx(60 - seconds / 60, abs=0.01)
    assert progress["can_train"] is False
    tools.upload_spoken(client, voice, spoken[3:], 1)
    assert client.get(f"/api/studio/voices/{voice}/progress").json()["can_train"] is True


def test_export_is_an_ljspeech_dataset(client, tools, voice, spoken, tmp_path):
    tools.upload_spoken(client, voice, spoken, 3)
    response = client.get(f"/api/studio/voices/{voice}/export")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert f"-{voice}.zip" in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path / "unzipped")
    (folder,) = list((tmp_path / "unzipped").iterdir())
    utterances = read_dataset(folder)
    assert [u.text for u in utterances] == [text for text, _ in spoken[:3]]
    for utterance, (_, wave) in zip(utterances, spoken, strict=False):
        data, rate = soundfile.read(str(utterance.audio_path))
        assert rate == 22050 and len(data) == len(wave)


def test_export_of_an_empty_voice_is_409(client, voice):
    response = client.get(f"/api/studio/voices/{voice}/export")
    assert response.status_code == 409 and "no kept recordings" in response.json()["error"]["message"]


# --- deleting ------------------------------------------------------------------------------------


def test_delete_voice_needs_its_name(site, client, tools, voice, spoken):
    tools.upload_spoken(client, voice, spoken, 2)
    takes = site.studio.data_dir / "voices" / str(voice)
    assert len(list((takes / "takes").iterdir())) == 2

    for query in ("", "?confirm=wrong"):
        refused = client.delete(f"/api/studio/voices/{voice}{query}")
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "confirmation_required" and "confirm='지민'" in error["message"]
    assert takes.is_dir()

    deleted = client.delete(f"/api/studio/voices/{voice}", params={"confirm": "지민"})
    assert deleted.status_code == 200 and deleted.json()["deleted"]["id"] == voice
    assert not takes.exists()
    assert client.get(f"/api/studio/voices/{voice}").status_code == 404
    with Database(site.db_url) as db, db.session() as session:
        assert session.get(Voice, voice) is None
        assert session.scalars(select(Recording)).all() == []


# --- crash safety (service level) --------------------------------------------------------------


def test_failed_row_write_leaves_no_file(site, client, tools, voice, ko_prompts, spoken, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    service = client.app.state.studio.service
    assert isinstance(service, StudioService)
    monkeypatch.setattr(service, "_insert_take", broken)
    text, wave = spoken[0]
    with pytest.raises(RuntimeError, match="went away"):
        service.store_take(voice, ko_prompts[text], tools.wav_file(wave), None)
    _assert_no_files(site, voice)
    with Database(site.db_url) as db, db.session() as session:
        assert session.scalars(select(Recording)).all() == []


def test_settings_defaults_and_environment(tmp_path):
    from moksori.studio import StudioSettings
    from moksori.studio.service import default_data_dir

    with Database(f"sqlite:///{tmp_path / 'db' / 'moksori.db'}") as db:
        assert default_data_dir(db) == (tmp_path / "db" / "studio").resolve()
    with Database.in_memory() as db:
        temporary = default_data_dir(db)
        assert temporary.name.startswith("moksori-studio-") and temporary.is_dir()
        temporary.rmdir()
    settings = StudioSettings.from_env({
        "MOKSORI_STUDIO_DATA_DIR": str(tmp_path), "MOKSORI_STUDIO_SAMPLE_RATE": "24000",
        "MOKSORI_STUDIO_ALLOW_ANONYMOUS": "no", "MOKSORI_STUDIO_TRAIN_THREADS": "",
    })
    assert (settings.data_dir, settings.sample_rate, settings.allow_anonymous, settings.train_threads) == (
        tmp_path, 24000, False, None)
    with pytest.raises(ValueError, match="MOKSORI_STUDIO_MAX_TAKE_S='long' is not a number"):
        StudioSettings.from_env({"MOKSORI_STUDIO_MAX_TAKE_S": "long"})
    with pytest.raises(ValueError, match="min_training_takes"):
        StudioSettings(min_training_takes=1)


def test_sample_rate_setting_is_the_stored_rate(make_site, tools, spoken):
    site = make_site(sample_rate=16000)
    client = site.client()
    voice = tools.new_voice(client)
    (result,) = tools.upload_spoken(client, voice, spoken, 1)
    assert result["recording"]["sample_rate"] == 16000 and result["resampled"] is True
    path = site.studio.data_dir.resolve() / _row(site, result["recording"]["id"]).path
    assert soundfile.info(str(path)).samplerate == 16000
