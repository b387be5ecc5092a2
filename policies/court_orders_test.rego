# Unit tests of law-enforcement queries under court control (policies/court_orders.rego) and
# of the register's an_entry step. Inputs are sibling input_<name> rules, as in authz_test.rego.
package sijill.court_orders_test

import rego.v1

import data.sijill.authz

# 2026-11-29T00:00:00Z in nanoseconds, and a one_day.
t0 := 1795910400000000000

one_day := 86400000000000

police_client := {
	"kind": "law_enforcement", "client_id": "dgsn-pj", "sector": "police",
	"scopes": ["court_order:query"],
}

orders_officer := {
	"kind": "office", "client_id": "orders-office", "sector": "registry",
	"scopes": ["court_order:manage"], "actor": "greffier-karim",
}

an_order := {
	"reference": "TPI-FES-2026-0412", "client_id": "dgsn-pj", "subject": "st_fatima",
	"fields": ["address", "family_name_lat"], "purposes": ["criminal_investigation"],
	"issued_at_ns": t0 - one_day, "valid_until_ns": t0 + (30 * one_day),
	"embargo_until_ns": t0 + (90 * one_day), "revoked": false,
}

a_query := {
	"subject": police_client, "action": "court_order_query",
	"resource": {"kind": "person", "fields": ["address", "family_name_lat", "phone"], "subject": "st_fatima"},
	"purpose": "criminal_investigation", "time_ns": t0, "court_order": an_order,
}

input_order_releases_its_fields_for_its_person := a_query

test_order_releases_its_fields_for_its_person if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"address", "family_name_lat"}
	count(d.withheld) == 0
	d.legal_basis.court_order == "TPI-FES-2026-0412"
	as_set(d.reasons) == {"fields_withheld"}
	d.valid_until_ns == t0 + (30 * one_day)
}

input_no_order_is_refused := object.union(a_query, {"court_order": null})

test_no_order_is_refused if {
	d := authz.decision
	not d.allow
	count(d.fields) == 0
	as_set(d.reasons) == {"court_order_required"}
}

input_another_clients_order_is_refused := object.union(
	a_query,
	{"court_order": object.union(an_order, {"client_id": "gr-pj"})},
)

test_another_clients_order_is_refused if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"court_order_of_another_client"}
}

input_expired_order_is_refused := object.union(a_query, {"time_ns": t0 + (31 * one_day)})

test_expired_order_is_refused if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"court_order_expired"}
}

input_revoked_order_is_refused := object.union(
	a_query,
	{"court_order": object.union(an_order, {"revoked": true})},
)

test_revoked_order_is_refused if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"court_order_revoked"}
}

input_another_person_is_refused := object.union(
	a_query,
	{"resource": object.union(a_query.resource, {"subject": "st_youssef"})},
)

test_another_person_is_refused if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"person_not_in_court_order"}
}

input_another_purpose_is_refused := object.union(a_query, {"purpose": "tax_investigation"})

test_another_purpose_is_refused if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"purpose_not_in_court_order"}
}

input_fields_outside_the_order_release_nothing := object.union(
	a_query,
	{"resource": object.union(a_query.resource, {"fields": ["phone"]})},
)

test_fields_outside_the_order_release_nothing if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"no_field_in_court_order"}
}

# The policy's bound (data.court_orders.max_embargo_ns, 180 days) holds for every a_query.
input_embargo_beyond_the_bound_is_refused := object.union(
	a_query,
	{"court_order": object.union(an_order, {"embargo_until_ns": (t0 - one_day) + (181 * one_day)})},
)

test_embargo_beyond_the_bound_is_refused if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"embargo_beyond_bound"}
}

input_an_agency_cannot_query_under_an_order := object.union(
	a_query,
	{"subject": {"kind": "agency", "client_id": "cnss", "agency": "cnss", "sector": "social", "scopes": ["court_order:query"]}},
)

test_an_agency_cannot_query_under_an_order if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"subject_kind_not_permitted"}
}

input_order_subject_gives_the_pseudonym_step := object.union(
	a_query,
	{"action": "court_order_subject", "resource": {"kind": "person", "fields": [], "subject": "st_fatima"}},
)

test_order_subject_gives_the_pseudonym_step if {
	d := authz.decision
	d.allow
	count(d.fields) == 0
}

an_entry := {
	"subject": orders_officer, "action": "register_court_order", "resource": {"kind": "court_order"},
	"time_ns": t0, "court_order": an_order,
}

input_named_officer_enters_an_order := an_entry

test_named_officer_enters_an_order if {
	d := authz.decision
	d.allow
	contains(d.legal_basis.ref, "Law 22.01")
}

input_entry_beyond_the_embargo_bound_is_refused := object.union(
	an_entry,
	{"court_order": object.union(an_order, {"embargo_until_ns": t0 + (200 * one_day)})},
)

test_entry_beyond_the_embargo_bound_is_refused if {
	not authz.decision.allow
	"embargo_beyond_bound" in as_set(authz.decision.reasons)
}

input_machine_office_client_cannot_enter_an_order := object.union(
	an_entry,
	{"subject": object.remove(orders_officer, ["actor"])},
)

test_machine_office_client_cannot_enter_an_order if {
	not authz.decision.allow
	as_set(authz.decision.reasons) == {"named_officer_required"}
}

as_set(xs) := {x | some x in xs}
