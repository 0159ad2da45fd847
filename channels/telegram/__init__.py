"""Telegram Bot API: webhook Updates in, sendMessage out (python-telegram-bot)."""

from channels.telegram.adapter import TelegramAdapter, build_adapter
from channels.telegram.config import TelegramConfig

__all__ = ["TelegramAdapter", "TelegramConfig", "build_adapter"]
