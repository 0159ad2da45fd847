"""Twilio SMS and WhatsApp."""

from channels.twilio.adapter import TwilioAdapter, build_adapter
from channels.twilio.config import TwilioConfig

__all__ = ["TwilioAdapter", "TwilioConfig", "build_adapter"]
