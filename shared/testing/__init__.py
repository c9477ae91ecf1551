"""Pytest support: real PostgreSQL and RabbitMQ from the environment, else testcontainers."""
