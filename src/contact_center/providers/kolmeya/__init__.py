"""Kolmeya SMS provider: API client (client.py), webhook parsing (webhooks.py), the provider
adapter and registry entries (provider.py) and a local sandbox server (sandbox.py)."""
