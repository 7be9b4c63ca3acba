"""Issue 14.12: a kill -9 during uploads left a take file without a row and
``studio/tmp/upload-*`` files that nothing ever removed. Start-up now reconciles the data folder
(and logs what it removed); files younger than a few minutes are left to whoever writes them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

from sqlalchemy import select

from moksori.store import Database, Recording

OLD = time.time() - 3600


def _age(*paths) -> None:
    for path in paths:
        os.utime(path, (OLD, OLD))


def test_kill_during_upload_leftovers_are_removed_at_start(make_site, sec, caplog):
    site = make_site()
    client = site.client(host="127.0.0.1")
    voice = sec.new_voice(client, "voice")
    prompt = sec.first_ko_prompt(client)
    kept = sec.upload(client, voice, prompt, sec.flac_silence(1.0)).json()["recording"]
    site.stop(client)

    # What a server killed at the wrong moments leaves behind:
    studio = site.root / "studio"
    takes = studio / f"voices/{voice}/takes"
    upload_tmp = studio / "tmp" / "upload-abc123"  # killed while decoding an upload
    upload_tmp.write_bytes(b"RIFF....")
    orphan = takes / f"{prompt}_deadbeef0000.wav"  # killed after writing the take, before its row
    orphan.write_bytes(b"RIFF....")
    atomic_tmp = takes / ".x.wav.abcd.tmp"  # killed inside an atomic write
    atomic_tmp.write_bytes(b"half")
    half_deleted = takes / ".deleting-0011-1_aaaa.wav"  # killed between the rename and the unlink
    half_deleted.write_bytes(b"RIFF....")
    gone_voice = studio / "voices" / "999" / "takes"  # the voice's row is gone, its folder is not
    gone_voice.mkdir(parents=True)
    (gone_voice / "1_x.wav").write_bytes(b"RIFF....")
    _age(upload_tmp, orphan, atomic_tmp, gone_voice.parent)
    fresh = studio / "tmp" / "upload-fresh"  # another worker's upload in progress right now
    fresh.write_bytes(b"RIFF....")

    with caplog.at_level(logging.WARNING, logger="moksori.studio.service"):
        client = site.client(host="127.0.0.1")
    for path in (upload_tmp, orphan, atomic_tmp, half_deleted, gone_voice.parent):
        assert not path.exists(), path
    assert fresh.exists()
    stored = studio / kept["audio_url"].split("/")[-2]  # the take that has a row is untouched
    database = Database(site.db_url)
    with database.session() as session:
        paths = list(session.scalars(select(Recording.path)))
    database.dispose()
    assert len(paths) == 1 and (studio / paths[0]).is_file() and stored
    assert "studio start-up: removed 1 temp files, 2 take files without a row, 1 folders of deleted voices, " \
           "1 half-deleted" in caplog.text
    assert client.get(f"/api/studio/recordings/{kept['id']}/audio").status_code == 200


def test_a_real_kill_9_mid_upload_is_cleaned_up(make_site, sec):
    """A child process stores a take and is killed between writing the file and its row."""
    site = make_site()
    client = site.client(host="127.0.0.1")
    voice = sec.new_voice(client, "voice")
    prompt = sec.first_ko_prompt(client)
    site.stop(client)
    script = textwrap.dedent(f"""
        import os, signal, sys
        import numpy as np
        from moksori.store import Database
        from moksori.studio import StudioService, StudioSettings
        service = StudioService(Database({site.db_url!r}), StudioSettings(data_dir={str(site.root / 'studio')!r}), {str(site.voices_dir)!r})
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        service._insert_take = die  # the file is written; the row never is
        import io, soundfile
        buffer = io.BytesIO()
        soundfile.write(buffer, np.zeros(22050, dtype=np.float32), 22050, format="WAV")
        service.store_take({voice}, {prompt}, buffer.getvalue(), None)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    takes = site.root / "studio" / f"voices/{voice}/takes"
    left = list(takes.glob("*.wav"))
    assert len(left) == 1  # the attack's result: a take file with no row
    _age(*left)
    site.client(host="127.0.0.1")
    assert list(takes.glob("*.wav")) == []
