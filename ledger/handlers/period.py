"""Handlers of the sharing period commands."""

from __future__ import annotations
