# Unit tests of the breach-handling actions (data.actions: register_breach … close_breach):
# open to a named data-protection officer of an office, with the breach:manage scope, and to
# no one else. Inputs are sibling input_<name> rules, as in authz_test.rego.
package sijill.breaches_test

import rego.v1

import data.sijill.authz

as_set(xs) := {x | some x in xs}

# 2026-11-29T00:00:00Z in nanoseconds.
now := 1795910400000000000

officer := {
	"kind": "office", "client_id": "dpo-console", "sector": "registry",
	"scopes": ["breach:manage"], "actor": "dpo-amina",
}

step(subject, action) := {
	"subject": subject, "action": action, "resource": {"kind": "breach"}, "time_ns": now,
}

input_named_officer_registers_a_breach := step(officer, "register_breach")

test_named_officer_registers_a_breach if {
	d := authz.decision
	d.allow
	count(d.fields) == 0
	contains(d.legal_basis.ref, "art. 23")
}

input_named_officer_notifies_the_cndp := step(officer, "notify_cndp")

test_named_officer_notifies_the_cndp if authz.decision.allow

input_named_officer_notifies_the_persons := step(officer, "notify_persons")

test_named_officer_notifies_the_persons if authz.decision.allow

input_named_officer_reads_assesses_and_closes := step(officer, "read_breaches")

test_named_officer_reads_assesses_and_closes if authz.decision.allow

input_assessment_is_a_named_officer_step := step(officer, "assess_breach")

test_assessment_is_a_named_officer_step if authz.decision.allow

input_closure_is_a_named_officer_step := step(officer, "close_breach")

test_closure_is_a_named_officer_step if authz.decision.allow

# A machine client of the office (no officer signed in) holds the scope but names no one.
input_machine_office_client_cannot_handle_a_breach := step(
	object.remove(officer, ["actor"]),
	"register_breach",
)

test_machine_office_client_cannot_handle_a_breach if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"named_officer_required"}
}

input_empty_officer_name_is_no_officer := step(object.union(officer, {"actor": ""}), "notify_cndp")

test_empty_officer_name_is_no_officer if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"named_officer_required"}
}

input_officer_without_the_breach_scope_is_denied := step(
	object.union(officer, {"scopes": ["rnp:enrol", "rnp:rectify"]}),
	"read_breaches",
)

test_officer_without_the_breach_scope_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"missing_scope"}
}

input_auditor_cannot_register_a_breach := step(
	{"kind": "auditor", "client_id": "cndp-console", "scopes": ["breach:manage"], "actor": "a1"},
	"register_breach",
)

test_auditor_cannot_register_a_breach if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"subject_kind_not_permitted"}
}

input_agency_cannot_read_the_breach_register := step(
	{"kind": "agency", "client_id": "cnss", "agency": "cnss", "sector": "social", "scopes": ["breach:manage"]},
	"read_breaches",
)

test_agency_cannot_read_the_breach_register if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"subject_kind_not_permitted"}
}

# Offices' other actions keep working for machine clients: named_officer is per action.
input_machine_office_client_still_enrols := {
	"subject": {"kind": "office", "client_id": "bureau-rabat", "scopes": ["rnp:enrol"]},
	"action": "enrol",
	"resource": {"kind": "person", "fields": ["given_name_lat"]},
	"time_ns": now,
}

test_machine_office_client_still_enrols if authz.decision.allow
