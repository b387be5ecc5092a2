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


def _normalise_slowly(text: str) -> str:
    """The definition: :func:`_one_pass` to its fixpoint (at most four passes)."""
    result = _one_pass(text)
    # Casefolding can produce characters that decompose further; iterate to the fixpoint.
    for _ in range(3):
        again = _one_pass(result)
        if again == result:
            break
        result = again
    return result


class _Unfoldable(Exception):
    """A character whose folding depends on its neighbours (see :func:`_fold_alone`)."""


def _reorderable(decomposed: str) -> bool:
    # NFKD sorts runs of combining characters by class. That cannot change the result when
    # every combining character in play is a nonspacing mark, stripped right after.
    return any(unicodedata.combining(c) and unicodedata.category(c) != "Mn" for c in decomposed)


def _per_char_pass(text: str) -> str | None:
    """:func:`_one_pass` without its final collapsing of spaces, or None where NFKD's
    reordering could make the result depend on neighbouring characters."""
    step = unicodedata.normalize("NFKD", text)
    if _reorderable(step):
        return None
    step = unicodedata.normalize("NFKD", _strip_marks(step).casefold())
    if _reorderable(step):
        return None
    text = _strip_marks(step).translate(_ARABIC_MAP)
    return "".join(" " if unicodedata.category(c)[0] in "PSCZ" else c for c in text)


def _fold_alone(char: str) -> str | None:
    """What ``char`` becomes in any text, or None if that depends on its neighbours.

    Every step of a pass maps each character on its own (decomposition, mark stripping,
    casefolding (context-free in Python, unlike ``lower``), the Arabic table, the
    punctuation rule) except NFKD's canonical reordering, which :func:`_per_char_pass` rules
    out. So a text of foldable characters normalises to its characters' folds, joined then
    collapsed, provided each reaches its fixpoint within the passes the definition allows.
    """
    current = char
    for passes in range(1, 5):
        folded = _per_char_pass(current)
        if folded is None:
            return None
        if folded == current and passes > 1:
            return current
        current = folded
    return None


# Bounds the table's memory whatever characters arrive; names use a few hundred.
_TABLE_LIMIT = 20_000


class _FoldTable(dict[int, str]):
    """Code point -> fold, filled on first sight; str.translate does the per-text work in C."""

    def __init__(self) -> None:
        super().__init__()
        self.unfoldable: set[int] = set()

    def __missing__(self, code: int) -> str:
        if code in self.unfoldable:
            raise _Unfoldable
        folded = _fold_alone(chr(code))
        if folded is None:
            if len(self.unfoldable) < _TABLE_LIMIT:
                self.unfoldable.add(code)
            raise _Unfoldable
        if len(self) < _TABLE_LIMIT:
            self[code] = folded
        return folded


_FOLD = _FoldTable()


def normalise_text(text: str) -> str:
    """Names and places: script variants folded, marks and case dropped, spacing collapsed.

    Idempotent: a second pass changes nothing (checked by property tests). Computed through a
    per-character table (:func:`_fold_alone`); texts with a character whose fold depends on its
    neighbours take the definition's path (tests check both agree on arbitrary text).
    """
    try:
        return " ".join(text.translate(_FOLD).split())
    except _Unfoldable:
        return _normalise_slowly(text)


def normalise_identifier(text: str) -> str:
    """Document numbers (CNIE): letters upper-cased, digits in ASCII, everything else dropped."""
    folded = normalise_text(text)
    return "".join(c for c in folded if c.isalnum()).upper()
