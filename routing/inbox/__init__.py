"""The organizers' inbox: conversation status, assignment, notes, saved replies, live feed."""
