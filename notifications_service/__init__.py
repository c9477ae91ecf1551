"""Notifications service: order confirmations and report notices by e-mail, once per event."""
