"""Reading back what ``smtp-sink`` received: each confirmation once per mail, in arrival order."""

from __future__ import annotations

from pathlib import Path

from bench.smtp_sink import confirmed_orders

FIRST = "0b6f1c7e-3d1a-4c56-9a55-9f3b1c2d4e01"
SECOND = "5d2e8a90-1f4b-4f0e-8c3d-2a6b7c8d9e02"


def mail(subject: str, body: str = "Thank you for your order.") -> bytes:
    return f"From: shop@example.com\r\nTo: load@example.com\r\nSubject: {subject}\r\n\r\n{body}\r\n.\r\n".encode()


def test_confirmations_are_read_from_every_dump_file_in_order(tmp_path: Path) -> None:
    (tmp_path / "mail-20261201").write_bytes(mail(f"Order confirmation {FIRST}"))
    (tmp_path / "mail-20261202").write_bytes(
        mail("Report ready for 2026-12-01")
        + mail(f"Order confirmation {SECOND}", body=f"Quoted: Subject: Order confirmation {FIRST}")
        + mail(f"Order confirmation {SECOND}")
    )
    (tmp_path / "other-file").write_bytes(mail(f"Order confirmation {FIRST}"))

    assert confirmed_orders(tmp_path) == [FIRST, SECOND, SECOND]


def test_nothing_received_is_an_empty_list(tmp_path: Path) -> None:
    assert confirmed_orders(tmp_path) == []
