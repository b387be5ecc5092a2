# Agency systems (CNSS, ANAM, ministries …): lookups, attribute reads and eligibility
# predicates, each only for a purpose declared in the processing registry.
package sijill.authz

import rego.v1

is_agency if {
	subject_kind == "agency"
	subject_kind in action.subjects
	has_scope
}

# Registry entries (indexed by purpose) this agency declared for this purpose and action.
# Law 09.08 art. 12: processing needs a prior declaration to the CNDP; the registry is that
# list of declarations. (Used for deny reasons; the allow path reads `live` below.)
declared contains i if {
	is_agency
	some i, e in data.registry[input.purpose]
	e.sector == input.subject.sector
	input.subject.agency in e.agencies
	input.action in e.actions
}

# Declarations in force now (Law 09.08 art. 3(1)(e): no processing beyond the declared
# period). Every entry has numeric valid_from and valid_until (a far-future end for an
# open-ended declaration). Written as one comprehension over the purpose's few entries, with
# no user function and no set of objects: rego-cpp pays ~0.5 ms per function call and
# ~0.05-0.1 ms per rule, and the allow path must stay near a millisecond.
live := [e |
	is_agency
	some e in data.registry[input.purpose]
	e.sector == input.subject.sector
	input.subject.agency in e.agencies
	input.action in e.actions
	e.valid_from <= now
	now < e.valid_until
]

# How long this answer holds: the instants after now at which a rule of this file could
# answer otherwise (a declaration of the purpose taking effect or lapsing, art. 3(1)(e); a
# consent expiring, art. 4), of every declaration of the purpose and every consent given,
# not only of those that matched: the earliest of a superset comes no later. Between now
# and the earliest, the same input gets the same decision, so the gateway may reuse it.
horizons contains t if {
	some e in data.registry[input.purpose]
	some t in [e.valid_from, e.valid_until]
	t > now
}

horizons contains c.expires_at if {
	some c in input.consents
	is_number(c.expires_at)
	c.expires_at > now
}

default valid_until_ns := null

valid_until_ns := min(horizons) if count(horizons) > 0

# Exactly one live declaration must match; two would make the legal basis ambiguous.
entry := live[0] if count(live) == 1

basis_type := entry.legal_basis.type

# A consent counts only for this purpose, before it expires and for this recipient
# (Law 09.08 art. 4: consent is specific; art. 1: "free, specific and informed").
current_consents contains c if {
	some c in input.consents
	c.purpose == input.purpose
	is_number(c.expires_at)
	now < c.expires_at
	object.get(c, "revoked", false) == false
}

# A consent may name its recipient (an agency or a whole sector); one naming another
# recipient does not count here.
valid_consents contains c if {
	some c in current_consents
	object.get(c, "recipient", null) == null
}

valid_consents contains c if {
	some c in current_consents
	c.recipient == input.subject.agency
}

valid_consents contains c if {
	some c in current_consents
	c.recipient == input.subject.sector
}

consented_fields contains f if {
	some c in valid_consents
	some f in c.fields
}

# Law 09.08 art. 9: the person may object, but not to processing that a law makes
# mandatory. An objection therefore blocks consent, legitimate-interest and public-task
# processing; a "law" basis proceeds and the decision names the law that overrides it.
objected if {
	some o in input.objections
	o.purpose == input.purpose
}

objected if {
	some o in input.objections
	o.purpose == "*"
}

objected if {
	some o in input.objections
	o.sector == entry.sector
}

basis_ok if {
	basis_type == "consent"
	count(valid_consents) > 0
}

basis_ok if basis_type != "consent"

not_blocked if not objected

not_blocked if {
	objected
	basis_type == "law"
}

# Released = registry entry fields ∩ consented fields (consent basis) ∩ requested. Written
# per requested field (a handful) rather than over the entry's whole field list.
agency_released contains f if {
	input.action == "read_attributes"
	basis_type != "consent"
	some f in in_scope
	f in entry.fields
}

agency_released contains f if {
	input.action == "read_attributes"
	basis_type == "consent"
	some f in in_scope
	f in entry.fields
	f in consented_fields
}

default program := null

program := data.programs[input.resource.program]

agency_action_ok if input.action == "lookup"

agency_action_ok if {
	input.action == "read_attributes"
	count(agency_released) > 0
}

# Eligibility is a predicate (Law 72.18: the RSU answers "eligible or not" against the
# program threshold; the score and its inputs never leave).
agency_action_ok if {
	input.action == "eligibility"
	program != null
	input.resource.program in entry.programs
}

# The OAuth client was registered for a set of purposes; when the gateway passes them
# (subject.purposes), a purpose outside that set is refused even where the registry declares
# it for the agency (Law 09.08 art. 3(1)(b): processing only for the purposes declared).
purpose_registered if not is_array(input.subject.purposes)

purpose_registered if input.purpose in input.subject.purposes

# A declaration may require that a named official acts (`requires_official`): the agency's
# call then carries, from the token-exchange grant (RFC 8693 §4.1 `act`), the official's
# pseudonymous id and the case reference, and both go on the record. Law 09.08 art. 23
# (security of processing: the controller answers for who, among its staff, accessed what)
# and art. 3(1)(b) (a purpose is served one case at a time, not by browsing the register).
official_ok if not entry.requires_official

official_ok if {
	is_string(input.subject.official)
	is_string(input.subject.case)
}

agency_allowed if {
	is_agency
	now
	purpose_registered
	entry
	basis_ok
	not_blocked
	official_ok
	agency_action_ok
}

released contains f if {
	agency_allowed
	some f in agency_released
}

# Masking (Law 09.08 art. 3(1)(c), data minimisation): a released field carries its
# category's mask unless the declaration grants the full value.
masks := {f: mask |
	some f in agency_released
	not f in entry.full_fields
	mask := data.field_categories[data.fields[f].category].mask
	mask != "none"
}

obligations := masks if {
	agency_allowed
	input.action == "read_attributes"
}

obligations := {} if {
	agency_allowed
	input.action == "lookup"
}

obligations := {
	"predicate_only": true,
	"program": input.resource.program,
	"threshold": program.threshold,
	"comparison": program.comparison,
} if {
	agency_allowed
	input.action == "eligibility"
}

legal_basis := entry.legal_basis if agency_allowed

deny_reasons contains "no_declared_processing" if {
	is_agency
	count(declared) == 0
}

deny_reasons contains "purpose_not_registered_for_client" if {
	is_agency
	not purpose_registered
}

deny_reasons contains "processing_outside_validity" if {
	is_agency
	count(declared) > 0
	count(live) == 0
}

deny_reasons contains "ambiguous_declaration" if {
	is_agency
	count(live) > 1
}

deny_reasons contains "official_required" if {
	is_agency
	entry
	not official_ok
}

deny_reasons contains "no_valid_consent" if {
	is_agency
	basis_type == "consent"
	count(valid_consents) == 0
}

deny_reasons contains "objection" if {
	is_agency
	entry
	objected
	basis_type != "law"
}

notes contains "objection_overridden_by_law" if {
	agency_allowed
	objected
}

deny_reasons contains "no_field_permitted" if {
	is_agency
	entry
	input.action == "read_attributes"
	count(agency_released) == 0
}

notes contains "fields_withheld" if {
	agency_allowed
	input.action == "read_attributes"
	count(requested - agency_released) > 0
}

deny_reasons contains "unknown_program" if {
	is_agency
	input.action == "eligibility"
	program == null
}

deny_reasons contains "program_not_declared" if {
	is_agency
	entry
	input.action == "eligibility"
	program != null
	not input.resource.program in entry.programs
}

# Why each requested field was withheld from an allowed read, from the rules that decided
# (the agency's explanation can never disagree with its decision). Evaluated only when the
# decision document is built for an allowed read_attributes (authz.rego `withheld_out`).
agency_withheld[f] := "unknown_field" if {
	some f in requested
	not data.fields[f]
}

agency_withheld[f] := "not_declared_for_purpose" if {
	some f in requested
	data.fields[f]
	not f in entry.fields
}

agency_withheld[f] := "not_consented" if {
	basis_type == "consent"
	some f in requested
	data.fields[f]
	f in entry.fields
	not f in consented_fields
}

agency_withheld[f] := "not_released" if {
	basis_type != "consent"
	some f in requested
	f in entry.fields
	not f in agency_released
}

agency_withheld[f] := "not_released" if {
	basis_type == "consent"
	some f in requested
	f in entry.fields
	f in consented_fields
	not f in agency_released
}
