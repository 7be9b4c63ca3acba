"""Errors and warnings raised by the text front end."""


class UnreadableTextError(ValueError):
    """Text holds characters the front end cannot read aloud.

    ``characters`` lists them in order of first appearance, so a caller (preprocess,
    the server) can name them in its own message.
    """

    def __init__(self, characters: list[str], text: str) -> None:
        self.characters = characters
        self.text = text
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in characters)
        super().__init__(f"cannot read {shown} in {text[:80]!r}")


class UnreadableTextWarning(UserWarning):
    """Non-strict mode dropped characters it cannot read; the message names them."""
