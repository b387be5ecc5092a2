# Unit tests of the pseudonym translation (policies/pseudonyms.rego): an agency, with the
# lookup scope, within its own sector, and nothing released. Inputs are sibling input_<name>
# rules, as in authz_test.rego.
package sijill.pseudonyms_test

import rego.v1

import data.sijill.authz

# 2026-11-29T00:00:00Z in nanoseconds.
now := 1795910400000000000

cnss := {"kind": "agency", "client_id": "cnss", "agency": "cnss", "sector": "social", "scopes": ["agency:lookup"]}

translate(subject, sector) := {
	"subject": subject, "action": "translate_pseudonyms",
	"resource": {"kind": "pseudonyms", "sector": sector}, "time_ns": now,
}

input_an_agency_translates_its_own_sector := translate(cnss, "social")

test_an_agency_translates_its_own_sector if {
	d := authz.decision
	d.allow
	count(d.fields) == 0
	d.obligations == {"audit": "batch"}
	contains(d.legal_basis.ref, "art. 23")
}

input_another_sector_is_refused := translate(cnss, "health")

test_another_sector_is_refused if {
	d := authz.decision
	not d.allow
	"foreign_sector" in d.reasons
}

input_the_lookup_scope_is_required := translate(object.union(cnss, {"scopes": ["agency:query"]}), "social")

test_the_lookup_scope_is_required if {
	d := authz.decision
	not d.allow
	"missing_scope" in d.reasons
}

input_an_office_cannot_translate := translate(object.union(cnss, {"kind": "office"}), "social")

test_an_office_cannot_translate if {
	d := authz.decision
	not d.allow
	"subject_kind_not_permitted" in d.reasons
}
