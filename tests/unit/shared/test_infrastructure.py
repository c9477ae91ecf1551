import socket

import pytest

from shared.ports import free_port
from shared.testing.infrastructure import Infrastructure


def test_a_management_api_that_does_not_answer_says_how_to_enable_it() -> None:
    port = free_port()  # nothing listens there
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    infrastructure = Infrastructure(
        postgres_url="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        broker_url="amqp://guest:guest@127.0.0.1:5672/",
        management_url=f"http://127.0.0.1:{port}",
        management_auth=("guest", "guest"),
    )
    with pytest.raises(RuntimeError, match="rabbitmq-plugins enable rabbitmq_management"):
        infrastructure.create_vhost("never-made")
