"""Korean text: normalisation (numbers, units, Latin letters, symbols → Hangul) and pronunciation."""

from moksori.text.korean.normalize import normalize
from moksori.text.korean.pronounce import pronounce

__all__ = ["normalize", "pronounce"]
