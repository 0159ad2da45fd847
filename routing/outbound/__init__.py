"""Outbound: channel choice, composing, quiet hours, audiences, fan-out, cancel."""
