"""Language tags for caption tracks: BCP 47, checked by pattern, with a display name.

Only the common shape of a tag is accepted (RFC 5646's `langtag`, without extensions
or private use): a 2- or 3-letter language, an optional 4-letter script, an optional
2-letter or 3-digit region and optional variants, in any case on input and written in
the conventional case (`pt-BR`, `zh-Hant-TW`, `sr-Latn`). Whether the language exists
is not checked: a tag is a label for people and players, not a lookup key.
"""

from __future__ import annotations

import re

MAX_TAG = 35  # the model's column; RFC 5646 asks for at least 35 to be kept
_TAG = re.compile(
    r"^(?P<language>[A-Za-z]{2,3})"
    r"(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)$"
)

# The name a captions menu shows, in the language itself. A tag not listed shows its
# own base language's name with the region in parentheses, or else the tag.
NAMES = {
    "ar": "العربية",
    "bg": "Български",
    "ca": "Català",
    "cs": "Čeština",
    "cy": "Cymraeg",
    "da": "Dansk",
    "de": "Deutsch",
    "el": "Ελληνικά",
    "en": "English",
    "es": "Español",
    "et": "Eesti",
    "eu": "Euskara",
    "fa": "فارسی",
    "fi": "Suomi",
    "fr": "Français",
    "ga": "Gaeilge",
    "he": "עברית",
    "hi": "हिन्दी",
    "hr": "Hrvatski",
    "hu": "Magyar",
    "id": "Bahasa Indonesia",
    "is": "Íslenska",
    "it": "Italiano",
    "ja": "日本語",
    "ko": "한국어",
    "lt": "Lietuvių",
    "lv": "Latviešu",
    "nb": "Norsk bokmål",
    "nl": "Nederlands",
    "nn": "Norsk nynorsk",
    "no": "Norsk",
    "pl": "Polski",
    "pt": "Português",
    "pt-BR": "Português (Brasil)",
    "pt-PT": "Português (Portugal)",
    "ro": "Română",
    "ru": "Русский",
    "sk": "Slovenčina",
    "sl": "Slovenščina",
    "sr": "Српски",
    "sv": "Svenska",
    "th": "ไทย",
    "tr": "Türkçe",
    "uk": "Українська",
    "vi": "Tiếng Việt",
    "zh": "中文",
    "zh-Hans": "中文 (简体)",
    "zh-Hant": "中文 (繁體)",
}


def normalise_tag(tag: str) -> str | None:
    """`tag` in its conventional case if it has the shape of a BCP 47 tag; else None."""
    match = _TAG.match(tag.strip()) if len(tag.strip()) <= MAX_TAG else None
    if match is None:
        return None
    parts = [match["language"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    parts += [v.lower() for v in match["variants"].split("-") if v]
    return "-".join(parts)


def display_name(tag: str) -> str:
    """What a captions menu calls the track of `tag` (normalised) when no label is given."""
    if tag in NAMES:
        return NAMES[tag]
    parts = tag.split("-")
    for length in range(len(parts) - 1, 0, -1):
        base = "-".join(parts[:length])
        if base in NAMES:
            return f"{NAMES[base]} ({'-'.join(parts[length:])})"
    return tag
