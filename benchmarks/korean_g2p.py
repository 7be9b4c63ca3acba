"""Korean pronunciation (표준 발음법) side by side: moksori, ko-speech-tools and g2pk2.

Scores each system on ``tests/text/data/pronunciation_articles.tsv`` (a case is right when
the output, spaces ignored, equals one of the allowed pronunciations) and prints a table,
overall and per article. moksori and ko-speech-tools run in this interpreter. g2pk2 is a
peer, not a dependency: give ``--g2pk2-python`` an interpreter of a separate virtual
environment where it is installed (``pip install g2pk2 python-mecab-ko``); it runs there
with an empty NLTK ``cmudict`` (our input is Korean only), so it downloads nothing.

    .venv/bin/python benchmarks/korean_g2p.py --g2pk2-python /tmp/g2pk2env/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "tests/text/data/pronunciation_articles.tsv"
_G2PK2_RUNNER = """
import contextlib, json, sys
with contextlib.redirect_stdout(sys.stderr):  # it prints "mecab installed"
    from g2pk2 import G2p
    g2p = G2p()
texts = json.load(sys.stdin)
json.dump([g2p(text) for text in texts], sys.stdout, ensure_ascii=False)
"""


def load_table(path: Path = TABLE) -> list[tuple[str, str, tuple[str, ...]]]:
    """(article, written, allowed pronunciations) for every row of the table."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        article, written, spoken = line.split("\t")
        rows.append((article, written, tuple(spoken.split("|"))))
    return rows


def is_right(output: str, allowed: tuple[str, ...]) -> bool:
    return output.replace(" ", "") in {answer.replace(" ", "") for answer in allowed}


def run_moksori(texts: list[str]) -> list[str]:
    from moksori.text.korean.pronounce import pronounce_hangul

    return [pronounce_hangul(text) for text in texts]


def run_ko_speech_tools(texts: list[str]) -> list[str]:
    from ko_speech_tools.g2p.g2p import G2p

    g2p = G2p()
    return [g2p(text) for text in texts]


def _empty_nltk_cmudict(folder: Path) -> None:
    corpora = folder / "corpora"
    corpora.mkdir(parents=True)
    with zipfile.ZipFile(corpora / "cmudict.zip", "w") as archive:
        archive.writestr("cmudict/cmudict", "")
        archive.writestr("cmudict/README", "empty: Korean-only input\n")


def run_g2pk2(texts: list[str], python: str) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        _empty_nltk_cmudict(Path(folder))
        env = {**os.environ, "NLTK_DATA": folder}
        result = subprocess.run(
            [python, "-c", _G2PK2_RUNNER],
            input=json.dumps(texts, ensure_ascii=False),
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    return json.loads(result.stdout)


def peer_idioms() -> set[str]:
    """Words ko-speech-tools (and g2pk2, the same file) replace whole from its idiom list."""
    from ko_speech_tools.g2p.g2p import G2p

    return {written for written, _spoken in G2p()._idioms}


def score(rows, outputs: list[str], idioms: set[str]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (article, written, allowed), output in zip(rows, outputs, strict=True):
        keys = [article, "all"] + ([] if written in idioms else ["unlisted"])
        for key in keys:
            counts[key][0] += is_right(output, allowed)
            counts[key][1] += 1
    return {key: (right, total) for key, (right, total) in counts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g2pk2-python", help="interpreter of a venv with g2pk2 installed")
    parser.add_argument("--misses", action="store_true", help="list each system's wrong cases")
    args = parser.parse_args(argv)
    rows = load_table()
    texts = [written for _article, written, _allowed in rows]
    systems = {"moksori": run_moksori(texts), "ko-speech-tools": run_ko_speech_tools(texts)}
    if args.g2pk2_python:
        systems["g2pk2"] = run_g2pk2(texts, args.g2pk2_python)
    idioms = peer_idioms()
    scores = {name: score(rows, outputs, idioms) for name, outputs in systems.items()}
    articles = sorted({article for article, _w, _a in rows}, key=int) + ["all", "unlisted"]
    print("article " + "".join(f"{name:>18}" for name in systems))
    for article in articles:
        cells = []
        for name in systems:
            right, total = scores[name][article]
            cells.append(f"{right:>4}/{total:<4}{100 * right / total:6.1f}%  ")
        label = article if article in {"all", "unlisted"} else f"제{article}항"
        print(f"{label:<8}" + "".join(f"{cell:>18}" for cell in cells))
    print("unlisted: the cases whose text is not in the peers' idiom list (whole words they replace)")
    if args.misses:
        for name, outputs in systems.items():
            print(f"\n{name} misses:")
            for (article, written, allowed), output in zip(rows, outputs, strict=True):
                if not is_right(output, allowed):
                    print(f"  {article}\t{written}\t{output}\t(want {'|'.join(allowed)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
