"""WhatsApp Cloud API (Meta): webhooks in, Graph API messages out."""

from channels.whatsapp_cloud.adapter import WhatsAppCloudAdapter, from_settings

__all__ = ["WhatsAppCloudAdapter", "from_settings"]
