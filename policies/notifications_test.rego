# Unit tests of the citizens' notification actions (data.actions: manage_notifications,
# deliver_notice): a citizen sets their own choice and address, the gateway's notifier reads
# the address and nothing else, no one else reads either. Inputs are sibling input_<name>
# rules, as in authz_test.rego.
package sijill.notifications_test

import rego.v1

import data.sijill.authz

as_set(xs) := {x | some x in xs}

# 2026-11-29T00:00:00Z in nanoseconds.
now := 1795910400000000000

citizen := {"kind": "citizen", "client_id": "portal", "idcs": "2718281828", "scopes": ["citizen:self"]}

notifier := {"kind": "system", "client_id": "notifier", "sector": "", "scopes": ["system:notify"]}

contact(owner) := {"kind": "contact", "owner": owner, "fields": ["notice_address"]}

input_citizen_sets_own_notice_address := {
	"subject": citizen, "action": "manage_notifications",
	"resource": contact("2718281828"), "time_ns": now,
}

test_citizen_sets_own_notice_address if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"notice_address"}
	d.obligations == {}
	contains(d.legal_basis.ref, "art. 4")
}

input_citizen_cannot_set_another_persons_notices := {
	"subject": citizen, "action": "manage_notifications",
	"resource": contact("3141592653"), "time_ns": now,
}

test_citizen_cannot_set_another_persons_notices if {
	d := authz.decision
	d.allow == false
	as_set(d.reasons) == {"not_owner"}
}

input_notices_are_no_door_to_register_fields := {
	"subject": citizen, "action": "manage_notifications",
	"resource": {"kind": "contact", "owner": "2718281828", "fields": ["notice_address", "cnie"]},
	"time_ns": now,
}

test_notices_are_no_door_to_register_fields if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"notice_address"}
}

input_notifier_reads_the_notice_address := {
	"subject": notifier, "action": "deliver_notice", "resource": contact(null), "time_ns": now,
}

test_notifier_reads_the_notice_address if {
	d := authz.decision
	d.allow
	as_set(d.fields) == {"notice_address"}
	contains(d.legal_basis.ref, "art. 4")
}

input_notifier_reads_no_register_field := {
	"subject": notifier, "action": "deliver_notice",
	"resource": {"kind": "person", "fields": ["phone", "cnie"]}, "time_ns": now,
}

test_notifier_reads_no_register_field if {
	d := authz.decision
	d.allow == false
	"only_notice_addresses_for_the_notifier" in d.reasons
	count(d.fields) == 0
}

input_notifier_cannot_act_as_an_agency := {
	"subject": object.union(notifier, {"scopes": ["agency:query"]}), "action": "read_attributes",
	"purpose": "asd_payment", "resource": {"kind": "person", "fields": ["phone"]},
	"consents": [], "objections": [], "time_ns": now,
}

test_notifier_cannot_act_as_an_agency if {
	d := authz.decision
	d.allow == false
	"subject_kind_not_permitted" in d.reasons
}

input_notifier_without_its_scope_is_denied := {
	"subject": object.union(notifier, {"scopes": []}), "action": "deliver_notice",
	"resource": contact(null), "time_ns": now,
}

test_notifier_without_its_scope_is_denied if {
	d := authz.decision
	d.allow == false
	"missing_scope" in d.reasons
}

input_agency_cannot_read_notice_addresses := {
	"subject": {"kind": "agency", "client_id": "cnss", "agency": "cnss", "sector": "social", "scopes": ["system:notify"]},
	"action": "deliver_notice", "resource": contact(null), "time_ns": now,
}

test_agency_cannot_read_notice_addresses if {
	d := authz.decision
	d.allow == false
	"subject_kind_not_permitted" in d.reasons
}

input_auditor_cannot_read_notice_addresses := {
	"subject": {"kind": "auditor", "client_id": "cndp", "scopes": ["audit:read"]},
	"action": "read_audit_entries",
	"resource": {"kind": "contact", "fields": ["notice_address"]}, "time_ns": now,
}

test_auditor_cannot_read_notice_addresses if {
	d := authz.decision
	d.allow == false
	"personal_data_not_for_auditors" in d.reasons
}
