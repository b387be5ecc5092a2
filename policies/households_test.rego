# Unit tests of the household-change actions (data.actions: add_household_member,
# remove_household_member, split_household, declare_household) and of the citizen's reading
# of their household's history (read_household_history). Inputs are sibling input_<name>
# rules, as in authz_test.rego.
package sijill.households_test

import rego.v1

import data.sijill.authz

as_set(xs) := {x | some x in xs}

# 2026-11-29T00:00:00Z in nanoseconds.
now := 1795910400000000000

office(scope) := {
	"kind": "office", "client_id": "office-fes", "sector": "registry", "scopes": [scope],
}

change(subject, action) := {
	"subject": subject, "action": action,
	"resource": {"kind": "household", "fields": ["household_size", "members"]},
	"time_ns": now,
}

# Law 72.18: the RSU follows the household's life; Law 09.08 art. 3(1)(d): kept up to date.
input_office_adds_a_member := change(office("rsu:register"), "add_household_member")

test_office_adds_a_member if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"household_size", "members"}
	contains(d.legal_basis.ref, "Law 72.18")
	contains(d.legal_basis.ref, "art. 3(1)(d)")
}

input_office_removes_a_member := change(office("rsu:register"), "remove_household_member")

test_office_removes_a_member if authz.decision.allow

input_office_splits_a_household := change(office("rsu:register"), "split_household")

test_office_splits_a_household if authz.decision.allow

input_office_files_a_new_declaration := change(office("rsu:register"), "declare_household")

test_office_files_a_new_declaration if authz.decision.allow

# An office that may enrol persons but not register households changes none.
input_office_without_rsu_scope_changes_nothing := change(office("rnp:enrol"), "add_household_member")

test_office_without_rsu_scope_changes_nothing if {
	d := authz.decision
	d.allow == false
	"missing_scope" in as_set(d.reasons)
}

# An agency never changes the register, whatever scope its token claims.
input_agency_cannot_change_a_household := change(
	{"kind": "agency", "client_id": "cnss", "agency": "cnss", "sector": "social", "scopes": ["rsu:register"]},
	"split_household",
)

test_agency_cannot_change_a_household if {
	d := authz.decision
	d.allow == false
	"subject_kind_not_permitted" in as_set(d.reasons)
}

citizen(idcs) := {"kind": "citizen", "client_id": "portal", "sector": "citizens", "scopes": ["citizen:self"], "idcs": idcs}

history(subject, owner) := {
	"subject": subject, "action": "read_household_history",
	"resource": {"kind": "household", "owner": owner, "fields": []},
	"time_ns": now,
}

# Law 09.08 art. 7: the person reads what was done with their household's record.
input_citizen_reads_own_household_history := history(citizen("2345678901"), "2345678901")

test_citizen_reads_own_household_history if {
	d := authz.decision
	d.allow
	contains(d.legal_basis.ref, "art. 7")
}

input_citizen_cannot_read_another_household_history := history(citizen("2345678901"), "3456789012")

test_citizen_cannot_read_another_household_history if {
	d := authz.decision
	d.allow == false
	"not_owner" in as_set(d.reasons)
}

# A citizen does not change the register: the office does, on the household's declaration.
input_citizen_cannot_add_a_member := change(citizen("2345678901"), "add_household_member")

test_citizen_cannot_add_a_member if authz.decision.allow == false
