"""Errors and warnings raised by the text front end."""

import unicodedata


class UnreadableTextError(ValueError):
    """Text holds characters the front end cannot read aloud.

    ``characters`` lists them in order of first appearance, so a caller (preprocess,
    the server) can name them in its own message.
    """

    def __init__(self, characters: list[str], text: str) -> None:
        self.characters = _as_written(characters, text)
        self.text = text
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in self.characters)
        super().__init__(f"cannot read {shown} in {text[:80]!r}")


def _as_written(characters: list[str], text: str) -> list[str]:
    """Each character as the text has it: normalisation may have turned the one written into
    another (″ into two ′), and a message naming a character nobody typed helps no one."""
    written = []
    for character in characters:
        if character not in text:
            character = next((c for c in text if character in unicodedata.normalize("NFKD", c)), character)
        if character not in written:
            written.append(character)
    return written


class UnreadableTextWarning(UserWarning):
    """Non-strict mode dropped characters it cannot read; the message names them."""
