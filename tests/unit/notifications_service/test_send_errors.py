"""How an SMTP failure is classified: what is tried again later and what ends the notification."""

from __future__ import annotations

import aiosmtplib
import pytest

from notifications_service.senders import classify


def refused(*replies: tuple[int, str]) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(code, message, f"r{n}@example.com") for n, (code, message) in enumerate(replies)]
    )


@pytest.mark.parametrize(
    ("error", "permanent", "reason"),
    [
        (refused((550, "5.1.1 mailbox unavailable")), True, "550 5.1.1 mailbox unavailable"),
        (refused((451, "4.7.1 greylisted")), False, "451 4.7.1 greylisted"),
        (refused((452, "4.2.2 mailbox full")), False, "452 4.2.2 mailbox full"),
        # one recipient refused for now, one for good: worth another try for the one that may pass
        (refused((550, "5.1.1 no such user"), (451, "4.3.0 try later")), False, "550 5.1.1 no such user; 451 4.3.0 try later"),
        (refused((550, "5.1.1 no such user"), (553, "5.1.3 bad address")), True, "550 5.1.1 no such user; 553 5.1.3 bad address"),
        (aiosmtplib.SMTPDataError(554, "5.7.1 message rejected as spam"), True, "554 5.7.1 message rejected as spam"),
        (aiosmtplib.SMTPDataError(421, "4.3.2 service shutting down"), False, "421 4.3.2 service shutting down"),
        (aiosmtplib.SMTPSenderRefused(451, "4.1.8 sender domain unresolvable", "shop@example.com"), False, "451 4.1.8"),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"), True, "535 5.7.8 bad credentials"),
        (TimeoutError("timed out reading the reply"), False, "TimeoutError: timed out reading the reply"),
    ],
)
def test_4xx_replies_are_transient_and_5xx_permanent(error: BaseException, permanent: bool, reason: str) -> None:
    classified = classify(error)
    assert classified.permanent is permanent
    assert reason in str(classified)


def test_a_refusal_naming_no_recipient_is_not_taken_as_permanent() -> None:
    assert classify(refused()).permanent is False
