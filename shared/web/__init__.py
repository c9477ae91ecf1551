"""HTTP side of every service: app factory, health, request ids, errors, metrics."""
