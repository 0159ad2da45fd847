"""Telegram Bot API: webhook Updates in, sendMessage out (python-telegram-bot)."""

from channels.telegram.adapter import TelegramAdapter, build_telegram

__all__ = ["TelegramAdapter", "build_telegram"]
