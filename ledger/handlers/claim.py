"""Handlers of the claim commands."""

from __future__ import annotations
