"""The preprocessing report: what was kept, what was rejected and why, and symbol coverage."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PreprocessReport", "build_report", "format_report"]

MAX_REPORTED_REJECTIONS = 50


@dataclass
class PreprocessReport:
    """Summary of one preprocessing run (also saved as report.json)."""

    dataset: str
    dataset_format: str
    out_dir: str
    n_input: int
    n_kept: int
    n_rejected: int
    hours_kept: float
    hours_rejected: float
    rejected_by_reason: dict[str, int]
    speakers: dict[str, int]
    duration_mean_s: float
    duration_min_s: float
    duration_max_s: float
    n_train: int
    n_val: int
    symbols_version: str
    symbols_total: int  # symbols of the table that text can produce (padding and blank left out)
    symbols_seen: int
    unseen_symbols: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    # The first rejected items (id, reason, message), so the report names the bad clips;
    # all of them are in rejected.jsonl.
    rejected_items: list[dict[str, str]] = field(default_factory=list)

    @property
    def symbol_coverage(self) -> float:
        return self.symbols_seen / self.symbols_total if self.symbols_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessReport:
        return cls(**values)


def build_report(
    *,
    kept: list[dict[str, Any]],
    rejected: list[dict[str, Any]],
    n_train: int,
    n_val: int,
    frontend,
    dataset: str,
    dataset_format: str,
    out_dir: str,
    elapsed_s: float,
) -> PreprocessReport:
    """Summarise manifest records (``kept``) and rejected records of a run."""
    durations = [record["duration_s"] for record in kept]
    rejected_seconds = sum(record.get("duration_s") or 0.0 for record in rejected)
    seen = set(frontend.symbols.to_tokens(sorted({i for record in kept for i in record["ids"]})))
    speakable = frontend.spoken_symbols()
    unseen = [symbol for symbol in speakable if symbol not in seen]
    reasons = Counter(record["reason"] for record in rejected)
    return PreprocessReport(
        dataset=dataset,
        dataset_format=dataset_format,
        out_dir=out_dir,
        n_input=len(kept) + len(rejected),
        n_kept=len(kept),
        n_rejected=len(rejected),
        hours_kept=sum(durations) / 3600.0,
        hours_rejected=rejected_seconds / 3600.0,
        rejected_by_reason=dict(reasons.most_common()),
        speakers=dict(sorted(Counter(record["speaker"] for record in kept).items())),
        duration_mean_s=sum(durations) / len(durations) if durations else 0.0,
        duration_min_s=min(durations, default=0.0),
        duration_max_s=max(durations, default=0.0),
        n_train=n_train,
        n_val=n_val,
        symbols_version=frontend.symbols.version,
        symbols_total=len(speakable),
        symbols_seen=len(speakable) - len(unseen),
        unseen_symbols=unseen,
        elapsed_s=elapsed_s,
        rejected_items=[
            {"id": record["id"], "reason": record["reason"], "message": record["message"]}
            for record in rejected[:MAX_REPORTED_REJECTIONS]
        ],
    )


def format_report(report: PreprocessReport) -> str:
    """The report for people: a few aligned lines."""
    lines = [
        f"dataset      {report.dataset} ({report.dataset_format}) -> {report.out_dir}",
        f"clips        {report.n_input} in, {report.n_kept} kept, {report.n_rejected} rejected",
        f"audio        {_hours(report.hours_kept)} kept, {_hours(report.hours_rejected)} rejected",
    ]
    if report.n_kept:
        lines.append(
            f"durations    mean {report.duration_mean_s:.2f} s, "
            f"min {report.duration_min_s:.2f} s, max {report.duration_max_s:.2f} s"
        )
    lines.append(f"split        {report.n_train} train, {report.n_val} val")
    lines.append(f"speakers     {_speakers(report.speakers)}")
    lines.append(
        f"symbols      {report.symbols_seen}/{report.symbols_total} seen "
        f"({100 * report.symbol_coverage:.0f} %, table {report.symbols_version})"
    )
    if report.unseen_symbols:
        lines.append(f"  unseen     {' '.join(_show(token) for token in report.unseen_symbols)}")
    if report.rejected_by_reason:
        lines.append("rejected by reason")
        width = max(len(reason) for reason in report.rejected_by_reason)
        for reason, count in report.rejected_by_reason.items():
            lines.append(f"  {reason:<{width}}  {count}")
        lines.append(_rejected_heading(report))
        for item in report.rejected_items:
            lines.append(f"  {item['id']}  {item['reason']}: {item['message']}")
    lines.append(f"time         {report.elapsed_s:.1f} s")
    return "\n".join(lines)


def _rejected_heading(report: PreprocessReport) -> str:
    if len(report.rejected_items) < report.n_rejected:
        return f"rejected clips (first {len(report.rejected_items)} of {report.n_rejected}; all in rejected.jsonl)"
    return "rejected clips (also in rejected.jsonl)"


def _hours(hours: float) -> str:
    minutes = hours * 60.0
    return f"{hours:.2f} h" if hours >= 1.0 else f"{minutes:.1f} min"


def _speakers(speakers: dict[str, int]) -> str:
    if not speakers:
        return "none"
    names = [f"{name or '(single)'}: {count}" for name, count in speakers.items()]
    shown = ", ".join(names[:10])
    return f"{len(speakers)} ({shown}{', ...' if len(names) > 10 else ''})"


def _show(token: str) -> str:
    return token if token.strip() and token.isprintable() else repr(token)
