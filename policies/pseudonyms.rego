# Sector pseudonym key rotation, from the agency's side: during a rotation's transition an
# agency translates the pseudonyms it holds to the sector's current key version.
package sijill.authz

import rego.v1

# Law 09.08 art. 23: the controller secures the processing, and renewing the keys that make
# sector pseudonyms is such a measure; art. 3(1)(d): the identifiers an agency keeps must stay
# accurate, so it is given the current pseudonym of each person it already holds. Only within
# its own sector (the CNDP's 2020 deliberation: sector identifiers stay unlinkable across
# sectors); the gateway translates only pseudonyms issued to that sector, and nothing else
# than the pseudonym leaves.
translation_allowed if {
	is_agency
	now
	input.action == "translate_pseudonyms"
	input.resource.kind == "pseudonyms"
	input.resource.sector == input.subject.sector
}

allow if translation_allowed

# Recorded as one entry for the batch with its count: a translation reveals nothing new of
# anyone (same person, same sector, a re-keyed identifier the agency already holds), and a
# sector's whole rotation would otherwise write one entry per person it ever looked up.
obligations := {"audit": "batch"} if translation_allowed

legal_basis := action.legal_basis if translation_allowed

deny_reasons contains "foreign_sector" if {
	is_agency
	input.action == "translate_pseudonyms"
	input.resource.sector != input.subject.sector
}
