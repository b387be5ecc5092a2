# Unit tests of the erasure procedure's actions (data.actions: request_erasure,
# read_erasure_requests, approve_erasure, refuse_erasure): an office asks, a second named
# officer approves or refuses, and no one else takes part. Inputs are sibling input_<name>
# rules, as in authz_test.rego.
package sijill.erasure_test

import rego.v1

import data.sijill.authz

as_set(xs) := {x | some x in xs}

# 2026-12-06T00:00:00Z in nanoseconds.
now := 1796515200000000000

machine := {"kind": "office", "client_id": "office-fes", "sector": "registry", "scopes": ["rnp:erase"]}

amina := object.union(machine, {"actor": "amina"})

karim := object.union(machine, {"actor": "karim"})

# (Two-argument helpers: rego-cpp 1.5.2 crashes compiling a three-argument function here.)
approval(subject, requested_by) := {
	"subject": subject, "action": "approve_erasure", "time_ns": now,
	"resource": {"kind": "erasure_request", "requested_by": requested_by},
}

refusal(subject, requested_by) := {
	"subject": subject, "action": "refuse_erasure", "time_ns": now,
	"resource": {"kind": "erasure_request", "requested_by": requested_by},
}

input_machine_office_client_may_request_an_erasure := {
	"subject": machine, "action": "request_erasure", "time_ns": now,
	"resource": {"kind": "erasure_request"},
}

test_machine_office_client_may_request_an_erasure if {
	d := authz.decision
	d.allow
	contains(d.legal_basis.ref, "art. 8")
}

input_second_officer_approves := approval(karim, "amina")

test_second_officer_approves if authz.decision.allow

input_requester_cannot_approve_own_request := approval(amina, "amina")

test_requester_cannot_approve_own_request if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"four_eyes_required"}
}

input_approval_without_the_requester_named_is_denied := {
	"subject": karim, "action": "approve_erasure", "time_ns": now,
	"resource": {"kind": "erasure_request"},
}

test_approval_without_the_requester_named_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"four_eyes_required"}
}

input_machine_client_never_approves := approval(machine, "amina")

test_machine_client_never_approves if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"named_officer_required"}
}

input_officer_approves_a_machine_clients_request := approval(karim, "")

test_officer_approves_a_machine_clients_request if authz.decision.allow

input_machine_client_never_refuses := refusal(machine, "amina")

test_machine_client_never_refuses if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"named_officer_required"}
}

# Refusing erases nothing: the requester may withdraw their own request.
input_requester_may_refuse_own_request := refusal(amina, "amina")

test_requester_may_refuse_own_request if authz.decision.allow

input_officer_without_the_erasure_scope_is_denied := approval(
	object.union(karim, {"scopes": ["rnp:enrol", "rnp:rectify"]}),
	"amina",
)

test_officer_without_the_erasure_scope_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"missing_scope"}
}

input_agency_cannot_request_an_erasure := {
	"subject": {"kind": "agency", "client_id": "cnss", "agency": "cnss", "sector": "social", "scopes": ["rnp:erase"]},
	"action": "request_erasure", "time_ns": now, "resource": {"kind": "erasure_request"},
}

test_agency_cannot_request_an_erasure if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"subject_kind_not_permitted"}
}
