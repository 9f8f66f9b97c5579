"""Onboarding a new layout: a mapping suggested from a file's header and values, and a mapping's preview."""
