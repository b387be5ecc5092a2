# Law-enforcement queries under court control (docs/privacy.md, "Law-enforcement queries").
#
# A police or judicial authority (subject kind "law_enforcement") reads a person's data only
# under a court order entered in the register by an authorised office: the gateway looks the
# order up by the reference the query carries and passes it as input.court_order
# ({reference, client_id, subject, fields, purposes, issued_at_ns, valid_until_ns,
# embargo_until_ns, revoked}); input.resource.subject is the keyed tag of the person the query
# is about. Law 09.08 art. 21: data relating to offences are processed by the judicial
# authorities and, within their legal attributions, by public authorities; Law 22.01 (Code of
# Criminal Procedure) makes the judicial order the authority for the requisition, and art. 15
# the secrecy of the investigation that the embargo serves.
package sijill.authz

import rego.v1

is_law_enforcement if {
	subject_kind == "law_enforcement"
	subject_kind in action.subjects
	has_scope
}

default court_order := null

court_order := input.court_order if is_object(input.court_order)

order_for_client if court_order.client_id == input.subject.client_id

order_revoked if court_order.revoked == true

order_in_force if {
	now < court_order.valid_until_ns
	not order_revoked
}

order_subject_ok if {
	is_string(input.resource.subject)
	input.resource.subject == court_order.subject
}

order_purpose_ok if input.purpose in court_order.purposes

# The embargo is the court's, but bounded by the controller's policy (data.court_orders): a
# person's right of access (Law 09.08 art. 7) is delayed, never withheld for good.
embargo_bounded if {
	court_order.embargo_until_ns - court_order.issued_at_ns <= data.court_orders.max_embargo_ns
}

# The order lapses at valid_until_ns: an answer under it holds no longer (agency.rego
# `horizons`, the instants after which a decision may not be reused).
horizons contains t if {
	t := court_order.valid_until_ns
	is_number(t)
	t > now
}

order_released contains f if {
	input.action == "court_order_query"
	some f in in_scope
	f in court_order.fields
}

law_enforcement_action_ok if input.action == "court_order_subject"

law_enforcement_action_ok if {
	input.action == "court_order_query"
	count(order_released) > 0
}

law_enforcement_allowed if {
	is_law_enforcement
	now
	court_order != null
	order_for_client
	order_in_force
	order_subject_ok
	order_purpose_ok
	embargo_bounded
	law_enforcement_action_ok
}

released contains f if {
	law_enforcement_allowed
	some f in order_released
}

# The order names the fields; the court has weighed them, so nothing is masked.
obligations := {} if law_enforcement_allowed

legal_basis := object.union(action.legal_basis, {"court_order": court_order.reference}) if {
	law_enforcement_allowed
}

deny_reasons contains "court_order_required" if {
	is_law_enforcement
	court_order == null
}

deny_reasons contains "court_order_of_another_client" if {
	is_law_enforcement
	court_order != null
	not order_for_client
}

deny_reasons contains "court_order_revoked" if {
	is_law_enforcement
	order_revoked
}

deny_reasons contains "court_order_expired" if {
	is_law_enforcement
	court_order != null
	now >= court_order.valid_until_ns
}

deny_reasons contains "person_not_in_court_order" if {
	is_law_enforcement
	court_order != null
	not order_subject_ok
}

deny_reasons contains "purpose_not_in_court_order" if {
	is_law_enforcement
	court_order != null
	not order_purpose_ok
}

deny_reasons contains "embargo_beyond_bound" if {
	is_law_enforcement
	court_order != null
	not embargo_bounded
}

deny_reasons contains "no_field_in_court_order" if {
	is_law_enforcement
	court_order != null
	input.action == "court_order_query"
	count(order_released) == 0
}

notes contains "fields_withheld" if {
	law_enforcement_allowed
	input.action == "court_order_query"
	count(requested - order_released) > 0
}

# An office enters an order only within the same bound, and only one that is valid for some
# time after it was issued: what the register holds, the query rule above could honour.
court_order_entry_ok if input.action != "register_court_order"

court_order_entry_ok if {
	input.action == "register_court_order"
	court_order != null
	embargo_bounded
	court_order.valid_until_ns > court_order.issued_at_ns
}

deny_reasons contains "embargo_beyond_bound" if {
	direct_subject
	input.action == "register_court_order"
	court_order != null
	not embargo_bounded
}

deny_reasons contains "court_order_invalid" if {
	direct_subject
	input.action == "register_court_order"
	not court_order_entry_ok
}
