"""Tests of state shared across processes and hosts: leases, global rate limits, two hosts."""
