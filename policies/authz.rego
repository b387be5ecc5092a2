# Sijill authorisation: one decision for every request that touches personal data.
#
# The gateway (the enforcement point) sends one input document per request and asks for
# data.sijill.authz.decision. Everything is denied unless a rule below allows it: Law 09.08
# art. 4 makes lawful processing the exception that needs consent or a legal basis, so the
# default is to refuse. Input shape: policies/README.md.
package sijill.authz

import rego.v1

# The decision document. `fields`, `obligations` and `legal_basis` are empty/null whenever
# `allow` is false, so a caller that forgets to check `allow` still releases nothing.
# `withheld` maps each requested field an allowed agency read does not release to why.
# `valid_until_ns` is the earliest instant after now at which a rule used could answer this
# input otherwise (null: no such bound is known, and the decision must not be reused).
decision := {
	"allow": allow,
	"fields": released_list,
	"obligations": obligations_out,
	"reasons": reasons_list,
	"legal_basis": basis_out,
	"withheld": withheld_out,
	"valid_until_ns": valid_until_ns,
}

default allow := false

allow if agency_allowed

allow if office_allowed

allow if citizen_allowed

allow if auditor_allowed

allow if system_allowed

allow if law_enforcement_allowed

released_list := sort(released) if {
	allow
} else := []

obligations_out := obligations if {
	allow
} else := {}

basis_out := legal_basis if {
	allow
} else := null

# Requested fields an allowed agency read does not release, each with its reason code.
withheld_out := agency_withheld if {
	agency_allowed
	input.action == "read_attributes"
	count(requested - agency_released) > 0
} else := {}

# Reasons are stable codes, never values from the input (they go to the audit log). An
# allowed decision carries its notes (fields withheld, objection overridden by law); a
# denied one its deny reasons, computed only then (rego-cpp evaluates every rule body it
# reaches, and the allow path must stay under a millisecond).
reasons_list := sort(notes) if {
	allow
} else := sort(deny_reasons) if {
	count(deny_reasons) > 0
} else := ["denied_by_default"]

# --- Common facts -----------------------------------------------------------------------

default action := null

action := data.actions[input.action]

subject_kind := input.subject.kind if is_string(input.subject.kind)

# Scopes are an array in the token; a missing claim means no scope at all.
scopes contains s if {
	some s in input.subject.scopes
	is_string(s)
}

has_scope if action.scope in scopes

now := input.time_ns if is_number(input.time_ns)

requested contains f if {
	some f in input.resource.fields
	is_string(f)
}

# Requested fields of the catalogue that belong to a kind this action may touch (person,
# household, audit). Law 09.08 art. 3(1)(c): no more data than the purpose needs.
in_scope contains f if {
	some f in requested
	some kind in data.fields[f].kinds
	kind in action.field_kinds
}

# (Inlined where used, not a function: rego-cpp pays ~0.5 ms per user function call.)

deny_reasons contains "unknown_action" if action == null

deny_reasons contains "unknown_subject_kind" if {
	action != null
	not subject_kind in {"agency", "office", "citizen", "auditor", "system", "law_enforcement"}
}

deny_reasons contains "subject_kind_not_permitted" if {
	action != null
	subject_kind in {"agency", "office", "citizen", "auditor", "system", "law_enforcement"}
	not subject_kind in action.subjects
}

deny_reasons contains "missing_scope" if {
	action != null
	subject_kind in action.subjects
	not has_scope
}

deny_reasons contains "no_time" if not now
