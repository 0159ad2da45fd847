"""People: supporters, addresses, CSV import, merge, consent, team deletion."""
