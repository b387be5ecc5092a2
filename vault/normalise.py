"""Normalisation before blind indexing, so that one person's name written two ways matches.

Registers are fed by officers typing Arabic and Latin script from paper documents: the same
name arrives with or without hamza (أحمد / احمد), with ta marbuta or ha (فاطمة / فاطمه), with
alif maqsura or ya (مصطفى / مصطفي), stretched with tatweel, vocalised or not, and in Latin with
accents, any case, and stray spaces or hyphens. Deduplication on keyed blind indexes
(Law 72.18 art. 8, one identifier per person) must see these as equal.

Written here rather than taken from a library: PyArabic and camel-tools normalise in similar
ways but bring large dependencies into the trusted room for some twenty lines of table.
"""

from __future__ import annotations

import unicodedata

__all__ = ["normalise_identifier", "normalise_text"]

_ARABIC_MAP = str.maketrans(
    {
        # Hamza-carrying alifs (أ إ آ decompose under NFKD; alif wasla does not).
        "\u0671": "\u0627",  # ٱ -> ا
        "\u0623": "\u0627",  # أ
        "\u0625": "\u0627",  # إ
        "\u0622": "\u0627",  # آ
        "\u0629": "\u0647",  # ة -> ه
        "\u0649": "\u064a",  # ى -> ي
        "\u0640": None,  # tatweel (kashida) carries no letter
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Extended (Persian) digits
    }
)


def _strip_marks(text: str) -> str:
    # Harakat (U+064B..U+065F), superscript alif (U+0670) and Latin accents are all
    # nonspacing marks once decomposed.
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def _one_pass(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = _strip_marks(text).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = _strip_marks(text).translate(_ARABIC_MAP)
    # Punctuation, symbols and controls separate words ("Ben-Ali" = "Ben Ali").
    text = "".join(" " if unicodedata.category(c)[0] in "PSCZ" else c for c in text)
    return " ".join(text.split())


def normalise_text(text: str) -> str:
    """Names and places: script variants folded, marks and case dropped, spacing collapsed.

    Idempotent: a second pass changes nothing (checked by property tests).
    """
    result = _one_pass(text)
    # Casefolding can produce characters that decompose further; iterate to the fixpoint.
    for _ in range(3):
        again = _one_pass(result)
        if again == result:
            break
        result = again
    return result


def normalise_identifier(text: str) -> str:
    """Document numbers (CNIE): letters upper-cased, digits in ASCII, everything else dropped."""
    folded = normalise_text(text)
    return "".join(c for c in folded if c.isalnum()).upper()
