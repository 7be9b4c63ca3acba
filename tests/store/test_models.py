from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from moksori.store import (
    ApiKey,
    Database,
    Prompt,
    PromptSet,
    Recording,
    TrainingRun,
    User,
    Voice,
)


def _count(db: Database, model: type) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _recording(voice_id: int, prompt_id: int, take: int = 1) -> Recording:
    return Recording(
        voice_id=voice_id,
        prompt_id=prompt_id,
        take=take,
        path=f"voices/{voice_id}/{prompt_id}-{take}.wav",
        sample_rate=22050,
        duration_s=2.5,
        quality={"clipping": 0.0, "problems": []},
    )


def test_user_crud_and_aware_utc_timestamps(db: Database) -> None:
    with db.session() as session:
        user = User(username="dahye", password_hash="h")
        session.add(user)
    with db.session() as session:
        loaded = session.get(User, user.id)
        assert loaded.created_at.tzinfo is UTC
        assert abs(loaded.created_at - datetime.now(UTC)) < timedelta(minutes=1)
        loaded.username = "dahye2"
    with db.session() as session:
        assert session.get(User, user.id).username == "dahye2"
        session.delete(session.get(User, user.id))
    assert _count(db, User) == 0


def test_timestamps_keep_the_instant_across_timezones(db: Database) -> None:
    seoul = datetime(2025, 3, 1, 18, 0, tzinfo=timezone(timedelta(hours=9)))
    with db.session() as session:
        key = ApiKey(name="k", key_hash="a" * 64, prefix="mk_aaaaa", last_used_at=seoul)
        session.add(key)
    with db.session() as session:
        stored = session.get(ApiKey, key.id).last_used_at
    assert stored == datetime(2025, 3, 1, 9, 0, tzinfo=UTC) and stored.tzinfo is UTC


def test_naive_datetime_is_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), db.session() as session:
        session.add(User(username="naive", password_hash="h", created_at=datetime(2025, 1, 1)))


def test_voice_defaults_update_and_delete(db: Database) -> None:
    with db.session() as session:
        voice = Voice(name="public-ko", language="ko")
        session.add(voice)
    assert (voice.is_private, voice.sample_rate, voice.bundle_path, voice.owner_id) == (
        False,
        22050,
        None,
        None,
    )
    with db.session() as session:
        session.get(Voice, voice.id).bundle_path = "bundles/public-ko"
    with db.session() as session:
        assert session.get(Voice, voice.id).bundle_path == "bundles/public-ko"
        session.delete(session.get(Voice, voice.id))
    assert _count(db, Voice) == 0


def test_voice_name_unique_per_owner(db: Database) -> None:
    with db.session() as session:
        a, b = User(username="aaa", password_hash="h"), User(username="bbb", password_hash="h")
        session.add_all(
            [Voice(name="me", language="ko", owner=a), Voice(name="me", language="ko", owner=b)]
        )
    with pytest.raises(IntegrityError), db.session() as session:
        owner = session.scalar(select(User).where(User.username == "aaa"))
        session.add(Voice(name="me", language="en", owner=owner))


def test_voice_name_unique_without_owner(db: Database) -> None:
    with db.session() as session:
        session.add(Voice(name="shared", language="ko"))
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(Voice(name="shared", language="en"))


def test_prompt_set_and_prompts_crud(db: Database) -> None:
    with db.session() as session:
        prompt_set = PromptSet(name="mine", language="en", source="upload")
        prompt_set.prompts = [Prompt(position=2, text="Second."), Prompt(position=1, text="First.")]
        session.add(prompt_set)
    with db.session() as session:
        loaded = session.get(PromptSet, prompt_set.id)
        assert [p.text for p in loaded.prompts] == ["First.", "Second."]
        loaded.prompts[0].text = "Primero."
    with db.session() as session:
        assert session.scalar(select(Prompt.text).where(Prompt.position == 1)) == "Primero."
        session.delete(session.get(PromptSet, prompt_set.id))
    assert _count(db, Prompt) == 0


def test_prompt_position_unique_within_a_set(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as session:
        prompt_set = PromptSet(name="dup", language="ko", source="builtin")
        prompt_set.prompts = [Prompt(position=1, text="a"), Prompt(position=1, text="b")]
        session.add(prompt_set)


def test_prompt_set_source_is_checked() -> None:
    with pytest.raises(ValueError, match="source"):
        PromptSet(name="x", language="ko", source="internet")


def test_recording_crud(db: Database, voice_and_prompt: tuple[int, int]) -> None:
    voice_id, prompt_id = voice_and_prompt
    with db.session() as session:
        recording = _recording(voice_id, prompt_id)
        session.add(recording)
    assert (recording.kept, recording.verdict) == (True, "ok")
    with db.session() as session:
        loaded = session.get(Recording, recording.id)
        assert loaded.quality == {"clipping": 0.0, "problems": []}
        assert loaded.prompt.text == "안녕하세요."
        loaded.quality = {"clipping": 0.2, "problems": ["clipping"]}
        loaded.verdict, loaded.kept = "clipping", False
    with db.session() as session:
        loaded = session.get(Recording, recording.id)
        assert (loaded.quality["problems"], loaded.verdict, loaded.kept) == (
            ["clipping"],
            "clipping",
            False,
        )
        session.delete(loaded)
    assert _count(db, Recording) == 0


def test_recording_take_unique(db: Database, voice_and_prompt: tuple[int, int]) -> None:
    voice_id, prompt_id = voice_and_prompt
    with db.session() as session:
        session.add_all([_recording(voice_id, prompt_id, 1), _recording(voice_id, prompt_id, 2)])
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(_recording(voice_id, prompt_id, 2))


def test_recording_needs_an_existing_voice(db: Database, voice_and_prompt: tuple[int, int]) -> None:
    _, prompt_id = voice_and_prompt
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(_recording(9999, prompt_id))


def test_training_run_crud_and_updated_at(db: Database, voice_and_prompt: tuple[int, int]) -> None:
    voice_id, _ = voice_and_prompt
    with db.session() as session:
        run = TrainingRun(voice_id=voice_id, recipe="glowtts_hifigan_ko")
        session.add(run)
    assert (run.status, run.progress, run.step) == ("queued", 0.0, 0)
    first_update = run.updated_at
    with db.session() as session:
        loaded = session.get(TrainingRun, run.id)
        loaded.status, loaded.progress, loaded.step = "running", 0.25, 500
    with db.session() as session:
        loaded = session.get(TrainingRun, run.id)
        assert (loaded.status, loaded.progress, loaded.step) == ("running", 0.25, 500)
        assert loaded.updated_at >= first_update and loaded.updated_at > loaded.created_at
        session.delete(loaded)
    assert _count(db, TrainingRun) == 0


def test_training_run_status_and_progress_are_checked() -> None:
    with pytest.raises(ValueError, match="status"):
        TrainingRun(voice_id=1, recipe="r", status="done")
    with pytest.raises(ValueError, match="progress"):
        TrainingRun(voice_id=1, recipe="r", progress=1.5)


def test_api_key_crud_and_hash_unique(db: Database) -> None:
    with db.session() as session:
        key = ApiKey(name="k1", key_hash="b" * 64, prefix="mk_bbbbb")
        session.add(key)
    assert (key.rate_limit_per_minute, key.revoked_at) == (60, None)
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(ApiKey(name="k2", key_hash="b" * 64, prefix="mk_bbbbb"))


def test_username_unique(db: Database) -> None:
    with db.session() as session:
        session.add(User(username="same", password_hash="h"))
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(User(username="same", password_hash="h"))


def _add_run_and_recordings(db: Database, voice_id: int, prompt_id: int) -> None:
    with db.session() as session:
        session.add_all([_recording(voice_id, prompt_id, 1), _recording(voice_id, prompt_id, 2)])
        session.add(TrainingRun(voice_id=voice_id, recipe="r"))


def test_deleting_a_voice_in_the_orm_cascades(
    db: Database, voice_and_prompt: tuple[int, int]
) -> None:
    voice_id, prompt_id = voice_and_prompt
    _add_run_and_recordings(db, voice_id, prompt_id)
    with db.session() as session:
        session.delete(session.get(Voice, voice_id))
    assert (_count(db, Recording), _count(db, TrainingRun), _count(db, Prompt)) == (0, 0, 1)


def test_deleting_a_voice_in_sql_cascades(db: Database, voice_and_prompt: tuple[int, int]) -> None:
    voice_id, prompt_id = voice_and_prompt
    _add_run_and_recordings(db, voice_id, prompt_id)
    with db.session() as session:  # bypasses the ORM: only ON DELETE CASCADE can do it
        session.execute(delete(Voice).where(Voice.id == voice_id))
    assert (_count(db, Recording), _count(db, TrainingRun)) == (0, 0)


def test_prompts_with_recordings_cannot_be_deleted(
    db: Database, voice_and_prompt: tuple[int, int]
) -> None:
    voice_id, prompt_id = voice_and_prompt
    _add_run_and_recordings(db, voice_id, prompt_id)
    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(delete(PromptSet))
    assert _count(db, Recording) == 2


def test_a_user_who_owns_voices_cannot_be_deleted(
    db: Database, voice_and_prompt: tuple[int, int]
) -> None:
    with pytest.raises(IntegrityError), db.session() as session:
        session.delete(session.scalar(select(User)))
    with db.session() as session:  # the voice is neither gone nor turned public
        assert session.scalar(select(Voice)).owner_id is not None


def test_deleting_a_user_removes_their_api_keys(db: Database) -> None:
    with db.session() as session:
        user = User(username="gone", password_hash="h")
        session.add(user)
        session.flush()
        session.add(ApiKey(name="k", key_hash="c" * 64, prefix="mk_ccccc", owner_id=user.id))
    with db.session() as session:
        session.delete(session.get(User, user.id))
    assert _count(db, ApiKey) == 0
