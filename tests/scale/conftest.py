"""The gateway tests' ``world`` (enrolled persons, registered clients) for the restore drills."""

from tests.gateway.conftest import world  # noqa: F401 - a fixture, used by name
