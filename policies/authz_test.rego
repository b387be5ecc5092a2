# Unit tests of data.sijill.authz.decision. Every allow path has a test here; run by
# tests/policies (one pytest case per rule) and by `sijill pdp test`.
#
# Each test_<name> rule is evaluated with input set to the value of input_<name>. This
# replaces `with input as …`, which regopy 1.5.2 cannot run: rego-cpp aborts the whole process
# ("shape rego-localref has no field rego-refhead") or returns undefined (measured).
package sijill.authz_test

import rego.v1

import data.sijill.authz

# rego-cpp returns sort(<set>) as a set internally (it prints as an array, so engine outputs
# agree), so array equality and indexing on decision lists fail there; compare as sets.
as_set(xs) := {x | some x in xs}

# 2026-11-29T00:00:00Z in nanoseconds: inside every demo declaration's validity window.
now := 1795910400000000000

agency(name, sector, scope) := {
	"kind": "agency", "client_id": concat("-", [name, "client"]), "agency": name,
	"sector": sector, "scopes": [scope],
}

read(subject, purpose, fields) := {
	"subject": subject, "action": "read_attributes", "purpose": purpose,
	"resource": {"kind": "person", "fields": fields},
	"consents": [], "objections": [], "time_ns": now,
}

cnss_read := agency("cnss", "social", "agency:query")

sante_read := agency("ms_sante", "health", "agency:query")

consent(purpose, fields, expires) := {
	"id": "c-1", "purpose": purpose, "fields": fields, "expires_at": expires,
}

# --- agencies: legal basis "law" ---------------------------------------------------------

input_law_basis_releases_declared_fields_with_masks := read(cnss_read, "asd_payment", ["phone", "birth_date", "given_name_lat"])

test_law_basis_releases_declared_fields_with_masks if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"birth_date", "given_name_lat", "phone"}
	d.obligations == {"birth_date": "year", "phone": "last2"}
	d.legal_basis.type == "law"
}

input_full_value_granted_by_declaration_is_not_masked := read(cnss_read, "amo_tadamon_enrolment", ["given_name_ar", "birth_date"])

test_full_value_granted_by_declaration_is_not_masked if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"birth_date", "given_name_ar"}
	d.obligations == {}
}

input_undeclared_fields_are_withheld := read(cnss_read, "asd_payment", ["phone", "cnie", "address"])

test_undeclared_fields_are_withheld if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"phone"}
	"fields_withheld" in d.reasons
	d.withheld == {"cnie": "not_declared_for_purpose", "address": "not_declared_for_purpose"}
}

input_a_field_outside_the_catalogue_is_withheld_as_unknown := read(cnss_read, "asd_payment", ["phone", "shoe_size"])

test_a_field_outside_the_catalogue_is_withheld_as_unknown if {
	d := authz.decision
	d.allow
	d.withheld == {"shoe_size": "unknown_field"}
}

input_a_denied_read_explains_no_field := read(agency("cnss", "social", "agency:read"), "no_such_purpose", ["phone"])

test_a_denied_read_explains_no_field if {
	d := authz.decision
	not d.allow
	d.withheld == {}
}

input_lookup_allowed_for_declared_purpose := {
		"subject": agency("anam", "social", "agency:lookup"), "action": "lookup",
		"purpose": "amo_tadamon_enrolment", "resource": {"kind": "person"}, "time_ns": now,
	}

test_lookup_allowed_for_declared_purpose if {
	d := authz.decision
	d.allow
	count(d.fields) == 0
	d.legal_basis.type == "law"
}

input_eligibility_is_predicate_only_with_program_threshold := {
		"subject": agency("anss", "social", "agency:eligibility"), "action": "eligibility",
		"purpose": "asd_payment", "resource": {"kind": "household", "program": "asd"},
		"time_ns": now,
	}

test_eligibility_is_predicate_only_with_program_threshold if {
	d := authz.decision
	d.allow
	count(d.fields) == 0
	d.obligations.predicate_only == true
	d.obligations.program == "asd"
	d.obligations.threshold == data.programs.asd.threshold
	d.obligations.comparison == "lte"
}

input_objection_does_not_block_processing_a_law_requires := x if {
	x := object.union(read(cnss_read, "asd_payment", ["phone"]), {"objections": [{"purpose": "asd_payment"}]})
}

test_objection_does_not_block_processing_a_law_requires if {
	d := authz.decision
	d.allow
	"objection_overridden_by_law" in d.reasons
	contains(d.legal_basis.ref, "Law 58.23")
}

input_purposes_registered_for_the_client_allow := object.union(
	read(cnss_read, "asd_payment", ["phone"]),
	{"subject": object.union(cnss_read, {"purposes": ["amo_tadamon_enrolment", "asd_payment"]})},
)

test_purposes_registered_for_the_client_allow if authz.decision.allow

input_purpose_not_registered_for_the_client_is_denied := object.union(
	read(cnss_read, "asd_payment", ["phone"]),
	{"subject": object.union(cnss_read, {"purposes": ["amo_tadamon_enrolment"]})},
)

test_purpose_not_registered_for_the_client_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"purpose_not_registered_for_client"}
}

# --- how long a decision holds ------------------------------------------------------------

# A statutory read holds until its declaration lapses (its valid_until in the registry).
input_a_law_basis_decision_holds_until_the_declaration_lapses := read(cnss_read, "asd_payment", ["phone"])

test_a_law_basis_decision_holds_until_the_declaration_lapses if {
	authz.decision.valid_until_ns == 1924992000000000000
}

# A consent expiring first bounds the decision, whether or not it counted (here it did).
input_a_consent_expiring_first_bounds_the_decision := x if {
	x := object.union(
		read(sante_read, "maternal_health_followup", ["phone"]),
		{"consents": [consent("maternal_health_followup", ["phone"], now + 5)]},
	)
}

test_a_consent_expiring_first_bounds_the_decision if {
	d := authz.decision
	d.allow
	d.valid_until_ns == now + 5
}

# A declaration not yet in force bounds a denial: it may be allowed once it takes effect.
input_a_denial_holds_until_a_declaration_takes_effect := x if {
	x := object.union(read(cnss_read, "asd_payment", ["phone"]), {"time_ns": 1704067200000000000 - 10})
}

test_a_denial_holds_until_a_declaration_takes_effect if {
	d := authz.decision
	d.allow == false
	d.valid_until_ns == 1704067200000000000
}

# Without a time, nothing bounds the decision: it is never reused.
input_a_decision_without_time_has_no_horizon := x if {
	x := object.remove(read(cnss_read, "asd_payment", ["phone"]), ["time_ns"])
}

test_a_decision_without_time_has_no_horizon if {
	authz.decision.valid_until_ns == null
}

# --- agencies: legal basis "consent" ------------------------------------------------------

input_consent_basis_releases_declared_and_consented_fields_only := x if {
	x := object.union(
		read(sante_read, "maternal_health_followup", ["phone", "birth_date", "region"]),
		{"consents": [consent("maternal_health_followup", ["phone", "region", "cnie"], now + 1)]},
	)
}

test_consent_basis_releases_declared_and_consented_fields_only if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"phone", "region"}
	d.legal_basis.type == "consent"
}

input_consent_naming_the_sector_as_recipient_counts := x if {
	c := object.union(consent("maternal_health_followup", ["phone"], now + 1), {"recipient": "health"})
	x := object.union(read(sante_read, "maternal_health_followup", ["phone"]), {"consents": [c]})
}

test_consent_naming_the_sector_as_recipient_counts if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"phone"}
}

input_consent_basis_without_consent_is_denied := read(sante_read, "maternal_health_followup", ["phone"])

test_consent_basis_without_consent_is_denied if {
	d := authz.decision
	d.allow == false
	count(d.fields) == 0
	d.legal_basis == null
	"no_valid_consent" in d.reasons
}

input_expired_consent_is_denied := x if {
	x := object.union(
		read(sante_read, "maternal_health_followup", ["phone"]),
		{"consents": [consent("maternal_health_followup", ["phone"], now)]},
	)
}

test_expired_consent_is_denied if {
	d := authz.decision
	d.allow == false
}

input_consent_for_another_purpose_is_denied := x if {
	x := object.union(
		read(sante_read, "maternal_health_followup", ["phone"]),
		{"consents": [consent("scholarship_outreach", ["phone"], now + 1)]},
	)
}

test_consent_for_another_purpose_is_denied if {
	authz.decision.allow == false
}

input_consent_for_another_recipient_is_denied := x if {
	c := object.union(consent("maternal_health_followup", ["phone"], now + 1), {"recipient": "men"})
	x := object.union(read(sante_read, "maternal_health_followup", ["phone"]), {"consents": [c]})
}

test_consent_for_another_recipient_is_denied if {
	authz.decision.allow == false
}

input_revoked_consent_is_denied := x if {
	c := object.union(consent("maternal_health_followup", ["phone"], now + 1), {"revoked": true})
	x := object.union(read(sante_read, "maternal_health_followup", ["phone"]), {"consents": [c]})
}

test_revoked_consent_is_denied if {
	authz.decision.allow == false
}

input_objection_blocks_consent_processing := x if {
	x := object.union(
		read(sante_read, "maternal_health_followup", ["phone"]),
		{
			"consents": [consent("maternal_health_followup", ["phone"], now + 1)],
			"objections": [{"sector": "health"}],
		},
	)
}

test_objection_blocks_consent_processing if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"objection"}
}

# --- agencies: what is refused ------------------------------------------------------------

input_undeclared_purpose_is_denied := read(cnss_read, "marketing", ["phone"])

test_undeclared_purpose_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"no_declared_processing"}
}

input_other_sector_cannot_use_a_declaration := x if {
	subject := agency("cnss", "health", "agency:query")
	x := read(subject, "asd_payment", ["phone"])
}

test_other_sector_cannot_use_a_declaration if {
	authz.decision.allow == false
}

input_agency_not_named_in_declaration_is_denied := read(agency("anam", "social", "agency:query"), "asd_payment", ["phone"])

test_agency_not_named_in_declaration_is_denied if {
	authz.decision.allow == false
}

input_missing_scope_is_denied := read(agency("cnss", "social", "agency:lookup"), "asd_payment", ["phone"])

test_missing_scope_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"missing_scope"}
}

input_lapsed_declaration_is_denied := read(cnss_read, "household_survey", ["region"])

test_lapsed_declaration_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"processing_outside_validity"}
}

input_declaration_not_yet_in_force_is_denied := x if {
	x := object.union(read(sante_read, "maternal_health_followup", ["phone"]), {
		"time_ns": 1704067200000000000,
		"consents": [consent("maternal_health_followup", ["phone"], now)],
	})
}

test_declaration_not_yet_in_force_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"processing_outside_validity"}
}

input_eligibility_for_a_program_the_purpose_does_not_cover_is_denied := {
		"subject": agency("anam", "social", "agency:eligibility"), "action": "eligibility",
		"purpose": "amo_tadamon_enrolment", "resource": {"kind": "household", "program": "asd"},
		"time_ns": now,
	}

test_eligibility_for_a_program_the_purpose_does_not_cover_is_denied if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"program_not_declared"}
}

input_eligibility_for_an_unknown_program_is_denied := {
		"subject": agency("anam", "social", "agency:eligibility"), "action": "eligibility",
		"purpose": "amo_tadamon_enrolment", "resource": {"kind": "household", "program": "x"},
		"time_ns": now,
	}

test_eligibility_for_an_unknown_program_is_denied if {
	d := authz.decision
	d.allow == false
	"unknown_program" in d.reasons
}

input_request_without_time_is_denied := x if {
	x := object.remove(read(cnss_read, "asd_payment", ["phone"]), ["time_ns"])
}

test_request_without_time_is_denied if {
	authz.decision.allow == false
}

input_empty_input_is_denied := {}

test_empty_input_is_denied if {
	d := authz.decision
	d.allow == false
	count(d.fields) == 0
	d.obligations == {}
}

# --- registration offices -------------------------------------------------------------------

office(scope) := {"kind": "office", "client_id": "bureau-rabat", "scopes": [scope]}

input_office_enrols_person_fields := {
		"subject": office("rnp:enrol"), "action": "enrol",
		"resource": {"kind": "person", "fields": ["cnie", "given_name_ar", "household_size"]},
		"time_ns": now,
	}

test_office_enrols_person_fields if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"cnie", "given_name_ar"}
	contains(d.legal_basis.ref, "72.18")
}

input_office_rectifies_person_fields := {
		"subject": office("rnp:rectify"), "action": "rectify",
		"resource": {"kind": "person", "fields": ["address"]}, "time_ns": now,
	}

test_office_rectifies_person_fields if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"address"}
	contains(d.legal_basis.ref, "art. 8")
}

input_office_registers_household := {
		"subject": office("rsu:register"), "action": "register_household",
		"resource": {"kind": "household", "fields": ["household_size", "milieu", "members"]},
		"time_ns": now,
	}

test_office_registers_household if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"household_size", "members", "milieu"}
}

input_office_cannot_read_attributes := read(office("agency:query"), "asd_payment", ["phone"])

test_office_cannot_read_attributes if {
	authz.decision.allow == false
}

# --- citizens -------------------------------------------------------------------------------

citizen := {"kind": "citizen", "client_id": "portal", "idcs": "2718281828", "scopes": ["citizen:self"]}

input_citizen_reads_own_data := {
		"subject": citizen, "action": "read_own_data",
		"resource": {"kind": "person", "owner": "2718281828", "fields": ["phone", "cnie"]},
		"time_ns": now,
	}

test_citizen_reads_own_data if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"cnie", "phone"}
	d.obligations == {}
	contains(d.legal_basis.ref, "art. 7")
}

input_citizen_reads_own_access_log := {
		"subject": citizen, "action": "read_access_log",
		"resource": {"kind": "access_log", "owner": "2718281828"}, "time_ns": now,
	}

test_citizen_reads_own_access_log if {
	d := authz.decision
	d.allow
	count(d.fields) == 0
}

input_citizen_may_object := {
	"subject": citizen, "action": "object",
	"resource": {"kind": "person", "owner": "2718281828"}, "time_ns": now,
}

test_citizen_may_object if authz.decision.allow

input_citizen_may_manage_consents := {
	"subject": citizen, "action": "manage_consents",
	"resource": {"kind": "person", "owner": "2718281828"}, "time_ns": now,
}

test_citizen_may_manage_consents if authz.decision.allow

input_citizen_may_read_score := {
	"subject": citizen, "action": "read_score",
	"resource": {"kind": "person", "owner": "2718281828"}, "time_ns": now,
}

test_citizen_may_read_score if authz.decision.allow

input_citizen_may_read_receipt := {
	"subject": citizen, "action": "read_receipt",
	"resource": {"kind": "person", "owner": "2718281828"}, "time_ns": now,
}

test_citizen_may_read_receipt if authz.decision.allow

input_citizen_cannot_read_another_persons_data := {
		"subject": citizen, "action": "read_own_data",
		"resource": {"kind": "person", "owner": "3141592653", "fields": ["phone"]},
		"time_ns": now,
	}

test_citizen_cannot_read_another_persons_data if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"not_owner"}
}

input_citizen_without_owner_on_resource_is_denied := {
		"subject": citizen, "action": "read_own_data",
		"resource": {"kind": "person", "fields": ["phone"]}, "time_ns": now,
	}

test_citizen_without_owner_on_resource_is_denied if {
	authz.decision.allow == false
}

input_citizen_cannot_act_as_agency := read(object.union(citizen, {"scopes": ["agency:query"]}), "asd_payment", ["phone"])

test_citizen_cannot_act_as_agency if {
	authz.decision.allow == false
}

# --- CNDP auditors --------------------------------------------------------------------------

auditor := {"kind": "auditor", "client_id": "cndp-console", "scopes": ["audit:read"]}

input_auditor_reads_audit_metadata_but_no_personal_field := {
		"subject": auditor, "action": "read_audit_entries",
		"resource": {"kind": "audit_log", "fields": ["purpose", "outcome", "phone", "cnie"]},
		"time_ns": now,
	}

test_auditor_reads_audit_metadata_but_no_personal_field if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"outcome", "purpose"}
	"personal_data_withheld" in d.reasons
}

input_auditor_may_read_audit_stats := {
	"subject": auditor, "action": "read_audit_stats", "resource": {"kind": "audit_log"}, "time_ns": now,
}

test_auditor_may_read_audit_stats if authz.decision.allow

input_auditor_may_read_registry := {
	"subject": auditor, "action": "read_registry", "resource": {"kind": "audit_log"}, "time_ns": now,
}

test_auditor_may_read_registry if authz.decision.allow

input_auditor_may_read_policy_revisions := {
	"subject": auditor, "action": "read_policy_revisions", "resource": {"kind": "audit_log"}, "time_ns": now,
}

test_auditor_may_read_policy_revisions if authz.decision.allow

input_auditor_may_read_inclusion_proof := {
	"subject": auditor, "action": "read_inclusion_proof", "resource": {"kind": "audit_log"}, "time_ns": now,
}

test_auditor_may_read_inclusion_proof if authz.decision.allow

input_auditor_cannot_read_a_person := {
		"subject": auditor, "action": "read_audit_entries",
		"resource": {"kind": "person", "fields": ["phone"]}, "time_ns": now,
	}

test_auditor_cannot_read_a_person if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"personal_data_not_for_auditors"}
}

input_auditor_cannot_read_own_data_route := {
		"subject": object.union(auditor, {"idcs": "2718281828", "scopes": ["citizen:self"]}),
		"action": "read_own_data",
		"resource": {"kind": "person", "owner": "2718281828", "fields": ["phone"]},
		"time_ns": now,
	}

test_auditor_cannot_read_own_data_route if {
	authz.decision.allow == false
}
