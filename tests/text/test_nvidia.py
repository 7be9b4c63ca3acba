"""NVIDIA Tacotron2's English front end: its symbol ids and english_cleaners behaviour."""

import pytest

from moksori.text import SymbolTable, TextFrontend
from moksori.text.nvidia import NVIDIA_ENGLISH_SYMBOLS, NVIDIA_ENGLISH_VERSION, english_cleaners, text_to_tokens


def test_table_is_nvidias():
    # keithito/NVIDIA: pad, '-', "!'(),.:;? ", A-Z, a-z, then 84 '@'-prefixed ARPAbet phones.
    assert len(NVIDIA_ENGLISH_SYMBOLS) == 148
    assert NVIDIA_ENGLISH_SYMBOLS[:13] == ("_", "-", "!", "'", "(", ")", ",", ".", ":", ";", "?", " ", "A")
    assert NVIDIA_ENGLISH_SYMBOLS[38] == "a" and NVIDIA_ENGLISH_SYMBOLS[64] == "@AA"
    assert NVIDIA_ENGLISH_SYMBOLS[-1] == "@ZH"
    stored = SymbolTable(NVIDIA_ENGLISH_SYMBOLS, NVIDIA_ENGLISH_VERSION).to_dict()
    assert SymbolTable.from_dict(stored).version == NVIDIA_ENGLISH_VERSION


def test_ids_as_nvidias_text_to_sequence():
    frontend = TextFrontend("en", cleaners="nvidia_english")
    # text_to_sequence("Hello, world!", ["english_cleaners"]) in NVIDIA's repository.
    assert frontend.to_ids("Hello, world!") == [45, 42, 49, 49, 52, 6, 11, 60, 52, 55, 49, 41, 2]
    assert frontend.to_ids("{HH AH0 L OW1}") == [64 + 42, 64 + 9, 64 + 53, 64 + 59]  # ARPAbet HH=42, AH0=9, L=53, OW1=59


def test_english_cleaners():
    assert english_cleaners("Mrs. Smith paid $3.50  on the 22nd.") == "misess smith paid three dollars, fifty cents on the twenty-second."
    assert english_cleaners("Café  3.14 ") == "cafe three point fourteen "
    normalized, tokens = text_to_tokens('Dr. "Who"; (really) 한')
    assert normalized == 'doctor "who"; (really) 한'
    assert "".join(tokens) == "doctor who; (really) "  # quotes and Hangul are not in the table: dropped


def test_settings_round_trip_and_checks():
    frontend = TextFrontend("en", cleaners="nvidia_english")
    again = TextFrontend.from_settings(frontend.settings())
    assert again.cleaners == "nvidia_english" and again.symbols == frontend.symbols
    assert "cleaners" not in TextFrontend("en").settings()  # moksori's own settings are unchanged
    with pytest.raises(ValueError, match="language must be 'en'"):
        TextFrontend("ko", cleaners="nvidia_english")
    with pytest.raises(ValueError, match="unknown cleaners"):
        TextFrontend("en", cleaners="basic")
    with pytest.raises(ValueError, match="empty"):
        frontend.to_ids("?!")
