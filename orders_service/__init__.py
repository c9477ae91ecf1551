"""Orders service: accepts orders and publishes ``order.created`` through its outbox."""
