# Registration offices, citizens, CNDP auditors and the gateway's own notifier: actions whose legal basis is fixed by
# the action itself (data.actions[_].legal_basis), not by a registry declaration.
package sijill.authz

import rego.v1

direct_subject if {
	subject_kind in {"office", "citizen", "auditor", "system"}
	subject_kind in action.subjects
	has_scope
	now
}

direct_released contains f if {
	direct_subject
	some f in in_scope
}

# Offices enrol persons in the RNP, rectify them and register RSU households (Law 72.18;
# rectification: Law 09.08 art. 8). They write what they are given; nothing is masked.
office_allowed if {
	direct_subject
	subject_kind == "office"
	named_officer_ok
	four_eyes_ok
	court_order_entry_ok
}

# Some office actions are an individual's accountable act, not a system's (the breach steps:
# Law 09.08 art. 23 makes the controller answer for the security of the data, and the record
# must say who acted): they need an officer signed in through the console, never a machine
# client's token. The action says so in data.actions (named_officer).
named_officer_ok if not object.get(action, "named_officer", false)

named_officer_ok if {
	object.get(action, "named_officer", false)
	is_string(input.subject.actor)
	input.subject.actor != ""
}

deny_reasons contains "named_officer_required" if {
	direct_subject
	subject_kind == "office"
	not named_officer_ok
}

# An erasure cannot be undone (the vault destroys the person's data key): the officer who
# approves it is not the one who asked for it (four eyes; Law 09.08 art. 23 makes the
# controller answer for the data, and art. 8 grants erasure only on a ground someone other
# than the requester has checked). The gateway names the requesting officer in
# input.resource.requested_by ("" for a machine client of the office); missing, it denies.
four_eyes_ok if not object.get(action, "four_eyes", false)

four_eyes_ok if {
	object.get(action, "four_eyes", false)
	is_string(input.resource.requested_by)
	input.subject.actor != input.resource.requested_by
}

deny_reasons contains "four_eyes_required" if {
	direct_subject
	subject_kind == "office"
	named_officer_ok
	not four_eyes_ok
}

# A citizen reaches only their own data (Law 09.08 art. 7: the right of access is the data
# subject's). Both identifiers must be present strings: a missing owner is not a match.
owner_match if {
	is_string(input.subject.idcs)
	is_string(input.resource.owner)
	input.subject.idcs != ""
	input.subject.idcs == input.resource.owner
}

citizen_allowed if {
	direct_subject
	subject_kind == "citizen"
	owner_match
}

# The CNDP audits the processing, not the persons (Law 09.08 art. 27 et seq.): audit
# metadata and statistics, never a person's or household's attributes.
personal_resource if input.resource.kind in {"person", "household", "contact"}

auditor_allowed if {
	direct_subject
	subject_kind == "auditor"
	not personal_resource
}

direct_allowed if office_allowed

direct_allowed if citizen_allowed

direct_allowed if auditor_allowed

direct_allowed if system_allowed

# The gateway's notifier tells a person of the uses of their record, as they asked (Law 09.08
# art. 4: their opt-in is the consent to use the address they gave, for that purpose only). It
# reads that address and nothing else: never a person's or household's register data.
system_allowed if {
	direct_subject
	subject_kind == "system"
	input.resource.kind == "contact"
}

deny_reasons contains "only_notice_addresses_for_the_notifier" if {
	direct_subject
	subject_kind == "system"
	input.resource.kind != "contact"
}

released contains f if {
	direct_allowed
	some f in direct_released
}

obligations := {} if direct_allowed

legal_basis := action.legal_basis if direct_allowed

deny_reasons contains "not_owner" if {
	direct_subject
	subject_kind == "citizen"
	not owner_match
}

deny_reasons contains "personal_data_not_for_auditors" if {
	direct_subject
	subject_kind == "auditor"
	personal_resource
}

notes contains "personal_data_withheld" if {
	auditor_allowed
	some f in requested
	not f in direct_released
}

notes contains "fields_withheld" if {
	direct_allowed
	subject_kind != "auditor"
	count(requested - direct_released) > 0
}
