"""WhatsApp Cloud API (Meta): webhooks in, Graph API messages out."""

from channels.whatsapp_cloud.adapter import WhatsAppCloudAdapter, build_adapter
from channels.whatsapp_cloud.config import WhatsAppCloudConfig

__all__ = ["WhatsAppCloudAdapter", "WhatsAppCloudConfig", "build_adapter"]
