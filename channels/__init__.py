"""Provider adapters: one folder per provider, each behind the protocol in `channels.base`."""
