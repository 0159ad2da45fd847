"""Organizing: reactions to what supporters send (keywords, onboarding, polls), check-ins."""
