"""`python -m audit`."""

from audit.cli import audit

audit()
