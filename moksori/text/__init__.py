"""Text front end: normalisation, pronunciation, tokens and the symbol table, sentences."""

from moksori.text.errors import UnreadableTextError, UnreadableTextWarning
from moksori.text.frontend import FrontendResult, TextFrontend
from moksori.text.sentences import split_paragraphs, split_sentences
from moksori.text.symbols import SymbolTable, UnknownSymbolError, symbol_table

__all__ = [
    "FrontendResult",
    "SymbolTable",
    "TextFrontend",
    "UnknownSymbolError",
    "UnreadableTextError",
    "UnreadableTextWarning",
    "split_paragraphs",
    "split_sentences",
    "symbol_table",
]
