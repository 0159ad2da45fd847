"""Africa's Talking SMS: a second SMS provider beside Twilio (RALLYPOINT_SMS_ROUTES)."""

from channels.africastalking.adapter import AfricasTalkingAdapter, build_adapter
from channels.africastalking.config import AfricasTalkingConfig

__all__ = ["AfricasTalkingAdapter", "AfricasTalkingConfig", "build_adapter"]
