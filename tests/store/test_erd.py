import shutil
from pathlib import Path

import pytest

from moksori.store import Base
from moksori.store.erd import erd_dot, main, write_erd

REPO = Path(__file__).resolve().parents[2]


def test_write_erd_lists_every_table_and_relation(tmp_path: Path) -> None:
    paths = write_erd(tmp_path)
    markdown = (tmp_path / "erd.md").read_text(encoding="utf-8")
    assert paths[0] == tmp_path / "erd.md"
    assert "```mermaid\nerDiagram" in markdown
    for table in Base.metadata.tables.values():
        assert f"    {table.name} {{" in markdown
        assert f"### {table.name}" in markdown
        for column in table.columns:
            assert f" {column.name}" in markdown
    assert 'voices ||--o{ recordings : "voice_id"' in markdown
    assert 'users |o--o{ voices : "owner_id"' in markdown
    assert "foreign key voice_id → voices.id (on delete cascade)" in markdown


def test_dot_source_has_every_table_and_foreign_key() -> None:
    dot = erd_dot()
    for name in Base.metadata.tables:
        assert f"    {name} [label=<" in dot
    assert "voices:id -> recordings:voice_id" in dot
    assert dot.count(" -> ") == sum(len(t.foreign_keys) for t in Base.metadata.tables.values())


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_svg_is_written_when_graphviz_is_there(tmp_path: Path) -> None:
    assert tmp_path / "erd.svg" in write_erd(tmp_path)
    assert b"<svg" in (tmp_path / "erd.svg").read_bytes()


def test_main_writes_into_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "docs")]) == 0
    assert "erd.md" in capsys.readouterr().out
    assert (tmp_path / "docs" / "erd.md").is_file()


def test_committed_erd_is_up_to_date(tmp_path: Path) -> None:
    committed = REPO / "docs" / "erd.md"
    if not committed.is_file():
        pytest.skip(f"{committed} not present")
    write_erd(tmp_path)
    fresh = (tmp_path / "erd.md").read_text(encoding="utf-8")
    assert committed.read_text(encoding="utf-8") == fresh, (
        "run `moksori db erd` to refresh docs/erd.md"
    )
