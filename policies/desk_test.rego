# Unit tests of the office's desks (data.actions: list_reviews … decide_rectification_request,
# request_rectification): a review or a rectification request is decided by a named officer
# of an office holding the desk's scope (Law 09.08 art. 11: a human, not a system, reviews an
# automated result; art. 8: the office answers a rectification request), and a citizen asks
# and reads only their own. Inputs are sibling input_<name> rules, as in authz_test.rego.
package sijill.desk_test

import rego.v1

import data.sijill.authz

as_set(xs) := {x | some x in xs}

# 2026-12-06T00:00:00Z in nanoseconds.
desk_now := 1796515200000000000

reviewer := {
	"kind": "office", "client_id": "office-desk", "sector": "registry",
	"scopes": ["rsu:review", "rnp:rectify"], "actor": "officer-salma",
}

citizen := {
	"kind": "citizen", "client_id": "portal", "sector": "citizens",
	"scopes": ["citizen:self"], "idcs": "2345678901",
}

at_desk(subject, action, resource) := {
	"subject": subject, "action": action, "resource": resource, "time_ns": desk_now,
}

input_reviewer_reads_the_declaration := at_desk(
	reviewer, "open_review",
	{"kind": "household", "fields": ["declaration", "given_name_lat"]},
)

test_reviewer_reads_the_declaration if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"declaration"}
	contains(d.legal_basis.ref, "art. 11")
}

input_reviewer_decides_with_a_reason := at_desk(
	reviewer, "decide_review",
	{"kind": "household", "fields": ["declaration", "reason"]},
)

test_reviewer_decides_with_a_reason if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"declaration", "reason"}
}

input_review_desk_queue_releases_no_value := at_desk(
	reviewer, "list_reviews", {"kind": "review", "fields": ["declaration"]},
)

test_review_desk_queue_releases_no_value if {
	d := authz.decision
	d.allow
	count(d.fields) == 0
}

input_machine_client_cannot_decide_a_review := at_desk(
	object.remove(reviewer, ["actor"]), "decide_review", {"kind": "household", "fields": []},
)

test_machine_client_cannot_decide_a_review if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"named_officer_required"}
}

input_registration_scopes_do_not_open_the_review_desk := at_desk(
	object.union(reviewer, {"scopes": ["rnp:enrol", "rnp:rectify", "rsu:register"]}),
	"open_review", {"kind": "household", "fields": ["declaration"]},
)

test_registration_scopes_do_not_open_the_review_desk if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"missing_scope"}
}

input_officer_reads_a_rectification_request := at_desk(
	reviewer, "open_rectification_request",
	{"kind": "rectification_request", "fields": ["proposed", "statement", "declaration"]},
)

test_officer_reads_a_rectification_request if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"proposed", "statement"}
	contains(d.legal_basis.ref, "art. 8")
}

input_accepting_rewrites_the_person := at_desk(
	reviewer, "decide_rectification_request",
	{"kind": "person", "fields": ["family_name_lat", "address"]},
)

test_accepting_rewrites_the_person if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"family_name_lat", "address"}
}

input_citizen_asks_for_their_own_rectification := at_desk(
	citizen, "request_rectification",
	{"kind": "rectification_request", "owner": "2345678901", "fields": ["proposed", "refusal_reason"]},
)

test_citizen_asks_for_their_own_rectification if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"proposed", "refusal_reason"}
}

input_citizen_cannot_read_anothers_requests := at_desk(
	citizen, "request_rectification",
	{"kind": "rectification_request", "owner": "2987654321", "fields": ["proposed"]},
)

test_citizen_cannot_read_anothers_requests if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"not_owner"}
}

input_citizen_reads_their_reviews_reasons := at_desk(
	citizen, "request_review", {"kind": "review", "owner": "2345678901", "fields": ["reason"]},
)

test_citizen_reads_their_reviews_reasons if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"reason"}
}

input_citizen_cannot_decide_a_review := at_desk(citizen, "decide_review", {"kind": "household"})

test_citizen_cannot_decide_a_review if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"subject_kind_not_permitted"}
}

input_agency_cannot_open_the_review_desk := at_desk(
	{"kind": "agency", "client_id": "cnss", "sector": "social", "scopes": ["rsu:review"]},
	"open_review", {"kind": "household", "fields": ["declaration"]},
)

test_agency_cannot_open_the_review_desk if authz.decision.allow == false
