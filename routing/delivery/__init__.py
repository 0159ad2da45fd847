"""Delivery: provider status updates applied to messages, forward only."""
