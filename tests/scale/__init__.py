"""Tests of the state every gateway process and host shares: leases, the global per-agency rate
limit, and two gateway hosts on one PostgreSQL behind a round-robin proxy.

They may import the gateway and the other test packages' helpers (tests.gateway's live server,
TCP proxy and world); they never share a database schema or data directory between tests.
"""
