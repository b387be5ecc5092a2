"""The web room: the citizen portal (``/portal``) and the CNDP auditor console (``/console``).

Owns: server-rendered pages (Jinja2 templates), their ar/fr/en catalogues (Babel), static
assets, the browser sessions of the two web clients, and the citizen's activation page.
May import: the gateway's services and the rooms' public APIs (identity, consent, audit), the
OAuth server's in-process endpoints. Every datum a page shows comes from the policy-mediated
JSON API, called in process with the signed-in person's own access token: the web room is an
OAuth client like any other and holds no access of its own.
Must never: hand a token to the browser (it gets an opaque session cookie), render a string
that is not in the catalogues, serve a script inline or from another origin, or read a page
for anyone but the session's own subject.
"""
