"""RabbitMQ messaging: envelope, topology, publisher, transactional outbox and consumer."""
