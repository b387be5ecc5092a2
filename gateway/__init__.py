"""The gateway: Sijill's policy enforcement point and composition root.

Owns the HTTP API, the web pages, the command line, settings and database migrations.
It may import every other room (`identity`, `consent`, `policies`, `vault`, `audit`);
nothing imports it. It must never hold personal data beyond the response to the request
that a policy decision released it for, and never log it.
"""

__version__ = "0.1.0"
