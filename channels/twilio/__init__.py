"""Twilio SMS and WhatsApp."""

from channels.twilio.adapter import TwilioAdapter, TwilioConfig, make_twilio_adapter

__all__ = ["TwilioAdapter", "TwilioConfig", "make_twilio_adapter"]
