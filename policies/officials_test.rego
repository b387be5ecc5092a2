# Unit tests of the acting-official requirement (agency.rego `official_ok`): a declaration
# marked `requires_official` allows an agency only when its token names an official and a
# case (RFC 8693 token exchange); other declarations are unchanged. Inputs are sibling
# input_<name> rules, as in authz_test.rego.
package sijill.officials_test

import rego.v1

import data.sijill.authz

# 2026-11-29T00:00:00Z in nanoseconds.
now := 1795910400000000000

cnss := {
	"kind": "agency", "client_id": "cnss", "agency": "cnss", "sector": "social",
	"scopes": ["agency:query"],
}

acting := object.union(cnss, {"official": "off_example", "case": "ASD-R-2026-0042"})

read(subject, purpose) := {
	"subject": subject, "action": "read_attributes", "purpose": purpose,
	"resource": {"kind": "person", "fields": ["phone", "address"]},
	"consents": [], "objections": [], "time_ns": now,
}

input_a_purpose_requiring_an_official_denies_a_call_without_one := read(cnss, "asd_case_review")

test_a_purpose_requiring_an_official_denies_a_call_without_one if {
	d := authz.decision
	not d.allow
	"official_required" in d.reasons
	count(d.reasons) == 1
}

input_an_official_without_a_case_is_not_enough := read(
	object.union(cnss, {"official": "off_example"}),
	"asd_case_review",
)

test_an_official_without_a_case_is_not_enough if {
	d := authz.decision
	not d.allow
	"official_required" in d.reasons
}

input_a_named_official_on_a_case_is_allowed := read(acting, "asd_case_review")

test_a_named_official_on_a_case_is_allowed if {
	d := authz.decision
	d.allow
	count(d.fields) == 2
	contains(d.legal_basis.ref, "Law 58.23")
}

input_a_purpose_without_the_requirement_needs_no_official := read(cnss, "asd_payment")

test_a_purpose_without_the_requirement_needs_no_official if {
	d := authz.decision
	d.allow
	not "official_required" in d.reasons
}

input_an_eligibility_question_for_the_purpose_needs_the_official_too := {
	"subject": object.union(cnss, {"scopes": ["agency:eligibility"]}),
	"action": "eligibility", "purpose": "asd_case_review",
	"resource": {"kind": "household", "program": "asd"}, "time_ns": now,
}

test_an_eligibility_question_for_the_purpose_needs_the_official_too if {
	d := authz.decision
	not d.allow
	"official_required" in d.reasons
	count(d.reasons) == 1
}
