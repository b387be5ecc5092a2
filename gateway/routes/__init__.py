"""The JSON API: one module per audience or standard (agencies, citizens, offices, auditors,
OAuth/OIDC, operators).

Owns: the HTTP shape of each route (path, request and response models, status codes,
problem+json types) and nothing more. A route parses, asks the enforcement point
(:mod:`gateway.authz`) to decide and to reveal, and maps the outcome to a response.

May import: :mod:`gateway.authz`, :mod:`gateway.auth`, :mod:`gateway.services`,
:mod:`gateway.problems` and the gateway's small helpers, and the public names of the rooms
(their errors and types). A router is added to :data:`gateway.app.ROUTERS`.

Must never: reveal personal data except through :meth:`gateway.authz.Enforcer.reveal` (or the
vault with a sealed decision the enforcer issued), skip the decision and its audit entry on a
route that touches personal data, echo personal data in an error, or import another route
module or the command line.
"""
