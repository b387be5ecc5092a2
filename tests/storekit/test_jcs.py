"""The one RFC 8785 encoder: byte for byte the ``rfc8785`` library's output, on any document."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from storekit.jcs import MAX_SAFE_INTEGER, NotCanonicalisable, canonical_json, is_plain

# Any text, astral planes and non-ASCII keys included (they take the library's path).
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
ascii_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=12)
safe_int = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalar = st.none() | st.booleans() | text | safe_int | finite
documents = st.recursive(
    scalar,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(text | ascii_text, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None)
@given(doc=st.dictionaries(text | ascii_text, documents, max_size=6))
def test_canonical_json_equals_the_rfc8785_library_on_any_document(doc: dict) -> None:
    assert canonical_json(doc) == rfc8785.dumps(doc)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | text | safe_int,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(ascii_text, children, max_size=4)
        ),
        max_leaves=12,
    ).map(lambda value: {"v": value})
)
def test_plain_documents_take_the_fast_path_and_still_equal_the_library(doc: dict) -> None:
    assert is_plain(doc)
    assert canonical_json(doc, plain=True) == rfc8785.dumps(doc)


def test_canonical_json_escapes_every_code_point_as_the_rfc8785_library_does() -> None:
    # Every Unicode scalar value, in strings of 4,096, as a value and as part of an array.
    scalars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(scalars), 4096):
        s = "".join(scalars[start : start + 4096])
        doc = {"k": s, "z": [s, None, True], "a": {"b": s}}
        assert is_plain(doc)
        assert canonical_json(doc) == rfc8785.dumps(doc), hex(ord(scalars[start]))


def test_keys_outside_ascii_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FB01 there, after it by code point.
    doc = {"\ufb01": 1, "\U0001f600": 2}
    assert not is_plain(doc)
    assert canonical_json(doc) == rfc8785.dumps(doc)
    assert canonical_json(doc).index("\U0001f600".encode()) < canonical_json(doc).index(
        "\ufb01".encode()
    )


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**63])
def test_integers_beyond_i_json_are_not_plain_and_the_library_decides(number: int) -> None:
    doc = {"n": number}
    assert not is_plain(doc)
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps(doc)
    with pytest.raises(NotCanonicalisable):
        canonical_json(doc)


@pytest.mark.parametrize(
    "doc", [{"s": "lone \ud800 surrogate"}, {1: "non-string key"}, {"v": object()}]
)
def test_documents_without_a_canonical_form_are_refused_without_echoing_them(doc: dict) -> None:
    with pytest.raises(NotCanonicalisable) as caught:
        canonical_json(doc)
    assert "surrogate" not in str(caught.value) and "non-string" not in str(caught.value)
