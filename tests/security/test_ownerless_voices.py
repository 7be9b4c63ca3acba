"""Issue 14.4: a voice made without an account (anonymous use on loopback) was open to every
signed-in user: read, export, delete its recordings. It belongs to anonymous use only."""

from __future__ import annotations

import io

import numpy as np
import soundfile


def _take(seconds: float = 1.5) -> bytes:
    t = np.arange(int(22050 * seconds)) / 22050
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050, format="WAV")
    return buffer.getvalue()


def test_signed_in_user_cannot_reach_ownerless_voices(make_site, sec):
    site = make_site()
    anonymous, mallory = site.client(), site.client()
    voice = sec.new_voice(anonymous, "모두의 목소리")
    prompt = sec.first_ko_prompt(anonymous)
    recording = sec.upload(anonymous, voice, prompt, _take(), name="take.wav").json()["recording"]["id"]
    uploaded = anonymous.post("/api/studio/prompt-sets", data={"name": "mine", "language": "ko"},
                              files={"file": ("p.txt", "첫 문장입니다.\n".encode(), "text/plain")}).json()["id"]
    assert mallory.post("/api/studio/account/signup", json={"username": "mallory", "password": "pw-long-enough"}).status_code == 201

    attempts = {
        "list": mallory.get("/api/studio/voices"),
        "get": mallory.get(f"/api/studio/voices/{voice}"),
        "progress": mallory.get(f"/api/studio/voices/{voice}/progress"),
        "export": mallory.get(f"/api/studio/voices/{voice}/export"),
        "audio": mallory.get(f"/api/studio/recordings/{recording}/audio"),
        "keep": mallory.patch(f"/api/studio/recordings/{recording}", json={"kept": False}),
        "delete take": mallory.delete(f"/api/studio/recordings/{recording}"),
        "runs": mallory.get(f"/api/studio/voices/{voice}/training"),
        "upload": sec.upload(mallory, voice, prompt, _take(), name="take.wav"),
        "delete voice": mallory.delete(f"/api/studio/voices/{voice}", params={"confirm": "모두의 목소리"}),
        "prompt set": mallory.get(f"/api/studio/prompt-sets/{uploaded}/prompts"),
    }
    assert attempts.pop("list").json()["voices"] == []
    for what, response in attempts.items():
        assert response.status_code == 404, (what, response.status_code, response.text)
        assert "code" in response.json()["error"]
    assert uploaded not in [s["id"] for s in mallory.get("/api/studio/prompt-sets").json()["prompt_sets"]]
    # Anonymous use still has it all, and the built-in sets stay everyone's.
    assert anonymous.get(f"/api/studio/recordings/{recording}/audio").status_code == 200
    assert anonymous.get(f"/api/studio/voices/{voice}").status_code == 200
    assert mallory.get("/api/studio/prompt-sets").json()["prompt_sets"] != []
    assert mallory.get(f"/api/studio/prompt-sets/{_builtin(mallory)}/prompts").status_code == 200


def _builtin(client) -> int:
    sets = client.get("/api/studio/prompt-sets").json()["prompt_sets"]
    return next(s["id"] for s in sets if s["source"] == "builtin")


def test_someone_elses_take_or_prompt_is_answered_as_a_missing_one(make_site, sec):
    """A 404 for another user's recording named its voice ("no voice with id 2"), and one for a
    prompt of another user's uploaded set named the set: both told that the thing exists."""
    site = make_site()
    owner, mallory = site.client(), site.client()
    voice = sec.new_voice(owner, "남의 목소리")
    recording = sec.upload(owner, voice, sec.first_ko_prompt(owner), _take(), name="take.wav").json()["recording"]["id"]
    uploaded = owner.post("/api/studio/prompt-sets", data={"name": "mine", "language": "ko"},
                          files={"file": ("p.txt", "첫 문장입니다.\n".encode(), "text/plain")}).json()["id"]
    prompt = owner.get(f"/api/studio/prompt-sets/{uploaded}/prompts").json()["prompts"][0]["id"]
    assert mallory.post("/api/studio/account/signup", json={"username": "mallory", "password": "pw-long-enough"}).status_code == 201
    own_voice = sec.new_voice(mallory, "내 목소리")

    for path in (f"/api/studio/recordings/{recording}", f"/api/studio/recordings/{recording}/audio"):
        theirs, missing = mallory.get(path), mallory.get(path.replace(str(recording), "987654"))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["error"]["message"] == f"no recording with id {recording}"
    taken = sec.upload(mallory, own_voice, prompt, _take(), name="take.wav")
    assert taken.status_code == 404 and taken.json()["error"]["message"] == f"no prompt with id {prompt}"
