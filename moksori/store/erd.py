"""The entity-relationship diagram of the database, generated from the models' metadata.

``write_erd`` writes ``erd.md`` (a Mermaid ``erDiagram`` plus a table-by-table listing) and,
when Graphviz's ``dot`` is on the PATH, ``erd.svg``. Run it as ``moksori db erd`` or
``python -m moksori.store.erd``.
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    MetaData,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from moksori.store.models import Base

HEADER = (
    "# Database schema\n\n"
    "Generated from `moksori/store/models.py` by `moksori db erd`; do not edit by hand.\n"
    "Timestamps are timezone-aware UTC. File paths are relative to the file store root.\n"
)


def _type_name(column: Column) -> str:
    col_type = column.type
    if isinstance(col_type, TypeDecorator):
        col_type = col_type.impl
    name = type(col_type).__name__.lower()
    length = getattr(col_type, "length", None)
    return f"{name}({length})" if length else name


def _single_unique(column: Column) -> bool:
    return any(
        isinstance(c, UniqueConstraint) and [col.name for col in c.columns] == [column.name]
        for c in column.table.constraints
    )


def _keys(column: Column) -> list[str]:
    keys = []
    if column.primary_key:
        keys.append("PK")
    if column.foreign_keys:
        keys.append("FK")
    if _single_unique(column):
        keys.append("UK")
    return keys


def _default(column: Column) -> str:
    if column.default is None:
        return ""
    arg = column.default.arg
    if callable(arg):
        text = {"utcnow": "now", "dict": "{}"}.get(getattr(arg, "__name__", ""), "computed")
    else:
        text = repr(arg)
    return text + (", now on update" if column.onupdate is not None else "")


def _mermaid_attribute(column: Column) -> str:
    keys = ", ".join(_keys(column))
    notes = ["nullable" if column.nullable else "not null"]
    if default := _default(column):
        notes.append(f"default {default}")
    parts = [_type_name(column), column.name] + ([keys] if keys else [])
    return " ".join(parts) + ' "' + ", ".join(notes).replace('"', "'") + '"'


def _relations(metadata: MetaData) -> list[tuple[Table, Table, Column]]:
    """(parent, child, foreign-key column) for every single-column foreign key."""
    relations = []
    for table in metadata.sorted_tables:
        for constraint in table.foreign_key_constraints:
            column = next(iter(constraint.columns))
            relations.append((constraint.referred_table, table, column))
    # A table's foreign keys are a set: sort them so the output is the same on every run.
    return sorted(relations, key=lambda r: (r[1].name, r[2].name))


def erd_mermaid(metadata: MetaData = Base.metadata) -> str:
    """The schema as a Mermaid ``erDiagram``."""
    lines = ["erDiagram"]
    for table in metadata.sorted_tables:
        lines.append(f"    {table.name} {{")
        lines.extend(f"        {_mermaid_attribute(column)}" for column in table.columns)
        lines.append("    }")
    for parent, child, column in _relations(metadata):
        link = "|o--o{" if column.nullable else "||--o{"
        lines.append(f'    {parent.name} {link} {child.name} : "{column.name}"')
    return "\n".join(lines) + "\n"


def _constraint_lines(table: Table) -> list[str]:
    lines = []
    for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
        if isinstance(constraint, UniqueConstraint):
            cols = ", ".join(c.name for c in constraint.columns)
            lines.append(f"- unique ({cols}) `{constraint.name}`")
        elif isinstance(constraint, CheckConstraint):
            lines.append(f"- check `{constraint.sqltext}` `{constraint.name}`")
        elif isinstance(constraint, ForeignKeyConstraint):
            column = next(iter(constraint.columns))
            target = next(iter(constraint.elements)).target_fullname
            rule = (
                f"on delete {constraint.ondelete.lower()}"
                if constraint.ondelete
                else "delete refused while referenced"
            )
            lines.append(f"- foreign key {column.name} → {target} ({rule})")
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        cols = ", ".join(c.name for c in index.columns)
        kind = "unique index" if index.unique else "index"
        where = index.dialect_options["sqlite"].get("where")
        lines.append(
            f"- {kind} ({cols})"
            + (f" where `{where}`" if where is not None else "")
            + f" `{index.name}`"
        )
    return lines


def _table_section(table: Table) -> str:
    rows = ["| column | type | null | key | default |", "| --- | --- | --- | --- | --- |"]
    for column in table.columns:
        null = "yes" if column.nullable else "no"
        keys = ", ".join(_keys(column))
        rows.append(
            f"| {column.name} | {_type_name(column)} | {null} | {keys} | {_default(column)} |"
        )
    return "\n".join([f"### {table.name}", "", *rows, "", *_constraint_lines(table)]) + "\n"


def erd_markdown(metadata: MetaData = Base.metadata, *, svg_name: str | None = None) -> str:
    """The whole ``erd.md``: the Mermaid diagram (and the SVG, if any) and every table."""
    parts = [HEADER, "```mermaid\n" + erd_mermaid(metadata) + "```\n"]
    if svg_name:
        parts.append(f"![Entity-relationship diagram]({svg_name})\n")
    parts.append("## Tables\n")
    parts.extend(_table_section(table) for table in metadata.sorted_tables)
    return "\n".join(parts)


def erd_dot(metadata: MetaData = Base.metadata) -> str:
    """The schema in Graphviz DOT: one record per table, an edge per foreign key."""
    lines = [
        "digraph erd {",
        "    graph [rankdir=LR, fontname=Helvetica];",
        "    node [shape=plaintext, fontname=Helvetica, fontsize=10];",
        "    edge [arrowhead=crow, arrowtail=tee, dir=both];",
    ]
    for table in metadata.sorted_tables:
        rows = "".join(
            f'<tr><td align="left" port="{c.name}">{html.escape(c.name)}</td>'
            f'<td align="left">{html.escape(_type_name(c))}</td>'
            f'<td align="left">{" ".join(_keys(c))}</td></tr>'
            for c in table.columns
        )
        header = f'<tr><td colspan="3" bgcolor="lightgrey"><b>{table.name}</b></td></tr>'
        lines.append(
            f'    {table.name} [label=<<table border="0" cellborder="1" cellspacing="0">'
            f"{header}{rows}</table>>];"
        )
    for parent, child, column in _relations(metadata):
        style = ", style=dashed" if column.nullable else ""
        lines.append(
            f'    {parent.name}:id -> {child.name}:{column.name} [label="{column.name}"{style}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_erd(out_dir: Path = Path("docs")) -> list[Path]:
    """Write ``erd.md`` (and ``erd.svg`` when Graphviz is installed); returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    dot = shutil.which("dot")
    if dot:
        svg = out_dir / "erd.svg"
        result = subprocess.run(
            [dot, "-Tsvg"], input=erd_dot().encode(), capture_output=True, check=True
        )
        svg.write_bytes(result.stdout)
        written.append(svg)
    markdown = out_dir / "erd.md"
    markdown.write_text(erd_markdown(svg_name="erd.svg" if dot else None), encoding="utf-8")
    return [markdown, *written]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moksori db erd", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("docs"), help="folder to write into (default: docs)"
    )
    args = parser.parse_args(argv)
    for path in write_erd(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
