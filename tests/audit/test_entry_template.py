"""Entry templates: an entry prepared from a template is byte for byte the entry built,
checked, serialised and hashed in full; what could break that is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import AuditEntry, EntryTemplate, InvalidEntry, prepare_entry

# Every character JSON writes as it is: printable ASCII but the quote and the backslash.
verbatim = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'),
    max_size=70,
)


def _entry(subject: str | None, digest: str, region: str) -> AuditEntry:
    return AuditEntry(
        time_ns=1_790_000_000_123_456_789,
        actor={"kind": "system", "id": "rsu-scoring", "sector": None},
        action="rsu_score",
        subject=subject,
        fields=["score", "score_model"],
        purpose="rsu_scoring",
        legal_basis={"type": "law", "ref": "Law 72.18", "detail": {"region": region}},
        outcome="allow",
        reasons=["trigger:rescore", f"inputs_digest:{digest}", "job:j-1"],
    )


@settings(max_examples=300, deadline=None)
@given(subject=verbatim, digest=verbatim, region=verbatim)
def test_a_template_prepares_exactly_the_entry_with_its_values(
    subject: str, digest: str, region: str
) -> None:
    template = EntryTemplate(_entry("@s@", "@d@", "@r@"), ("@s@", "@d@", "@r@"))
    assert template.prepare((subject, digest, region)) == prepare_entry(
        _entry(subject, digest, region)
    )


def test_a_template_with_a_fixed_subject_keeps_it_in_the_stored_columns() -> None:
    template = EntryTemplate(_entry(None, "@d@", "north"), ("@d@",))
    prepared = template.prepare(("ab12",))
    assert prepared == prepare_entry(_entry(None, "ab12", "north"))
    assert prepared.subject is None


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a\nb", "a\x00b", "é", "\u2028"])
def test_a_value_json_would_escape_is_refused(value: str) -> None:
    template = EntryTemplate(_entry("@s@", "@d@", "north"), ("@s@", "@d@"))
    with pytest.raises(InvalidEntry):
        template.prepare(("tag", value))


@pytest.mark.parametrize(
    ("entry", "placeholders"),
    [
        (_entry("@s@", "@s@", "north"), ("@s@",)),  # twice
        (_entry("tag", "ab", "north"), ("@s@",)),  # absent
        (_entry("x-@s@", "ab", "north"), ("@s@",)),  # part of the subject
        (_entry("tag", "ab", "north"), ("",)),
        (_entry("tag", 'a"b', "north"), ('a"b',)),  # escaped in the entry's JSON
    ],
)
def test_a_placeholder_that_is_not_once_in_a_string_value_is_refused(
    entry: AuditEntry, placeholders: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        EntryTemplate(entry, placeholders)


def test_a_placeholder_in_a_stored_column_other_than_the_subject_is_refused() -> None:
    entry = AuditEntry(
        time_ns=1,
        actor={"kind": "system", "id": "@a@", "sector": None},
        action="rsu_score",
        subject="tag",
    )
    with pytest.raises(ValueError):
        EntryTemplate(entry, ("@a@",))
