"""Texts sent to supporters: merge variables."""
