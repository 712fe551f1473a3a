"""What text ClipSync stores from people and from its configuration: nothing invisible.

Control characters (Unicode category Cc), format characters (Cf: zero-width spaces
and joiners, bidirectional overrides, ...), the line and paragraph separators (Zl,
Zp) and unpaired surrogates (Cs) either render as nothing or rearrange the text
around them: `a@x.org\\u0000` looks exactly like `a@x.org`, and a right-to-left
override makes a title read backwards. Text is NFKC-normalised first, so look-alike
compatibility forms (fullwidth letters, ligatures) become the plain characters.

One rule for every such field: emails, video titles and descriptions, category
labels (and display names and tags when they exist). Descriptions may keep line
breaks and tabs. Prose may keep the zero-width joiner and non-joiner, which Persian
and the Indic scripts need to be spelled right and emoji sequences (👩‍💻) are made
of; identifiers (emails) may not, since there they only make look-alikes.
"""

from __future__ import annotations

import unicodedata

from clipsync.errors import ValidationFailed

FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# What multi-line text (a description) may keep of the forbidden characters.
LINE_BREAKS = frozenset({"\n", "\t"})
# What prose may keep: ZERO WIDTH NON-JOINER and ZERO WIDTH JOINER.
JOINERS = frozenset({"\u200c", "\u200d"})


class InvisibleCharacter(ValueError):
    """The text holds a character a reader could not see; `character` is the first."""

    def __init__(self, character: str) -> None:
        self.character = character
        super().__init__(f"contains an invisible or control character ({self.described})")

    @property
    def described(self) -> str:
        """`U+0000`, with the character's Unicode name when it has one."""
        name = unicodedata.name(self.character, "")
        code = f"U+{ord(self.character):04X}"
        return f"{code} {name}" if name else code


def clean_text(text: str, *, multiline: bool = False, identifier: bool = False) -> str:
    """`text` NFKC-normalised; raises `InvisibleCharacter` for a forbidden character.

    With `multiline`, line breaks (`\\r\\n` and `\\r` become `\\n`) and tabs are kept.
    An `identifier` (an email) may not keep the joiners that prose may.
    """
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    normalised = unicodedata.normalize("NFKC", text)
    allowed = (LINE_BREAKS if multiline else frozenset()) | (frozenset() if identifier else JOINERS)
    for character in normalised:
        if character in allowed:
            continue
        if unicodedata.category(character) in FORBIDDEN_CATEGORIES:
            raise InvisibleCharacter(character)
    return normalised


def clean_field(
    text: str, *, field: str, what: str, multiline: bool = False, identifier: bool = False
) -> str:
    """`clean_text` for a field of a request: refused with a 422 that names it.

    `what` starts the message, e.g. "Titles" gives "Titles cannot contain ...".
    """
    try:
        return clean_text(text, multiline=multiline, identifier=identifier)
    except InvisibleCharacter as error:
        raise ValidationFailed(
            f"{what} cannot contain invisible or control characters "
            f"(found {error.described}). Remove it and try again.",
            field=field,
        ) from None
