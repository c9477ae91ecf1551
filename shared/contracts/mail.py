"""The mail address type of the contracts: what a consumer may put in a mail header.

The orders API validates addresses in full (``EmailStr``) before an order exists; an
event is checked again for the shape of an address, with no white space, control
characters (CR and LF above all) or header delimiters, so that an event from anywhere
can never add a header to a mail. The shape check runs in pydantic's Rust core: it
costs each consumer next to nothing per event, where a full check costs tens of
microseconds.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

# a character a mail header may not carry unquoted: white space, controls, delimiters of address lists
_ATOM = r"[^\s\x00-\x1f\x7f@<>()\[\],;:\\\"]"
MAIL_ADDRESS_PATTERN = rf"^{_ATOM}{{1,64}}@{_ATOM}+\.{_ATOM}+$"

MailAddress = Annotated[str, StringConstraints(max_length=320, pattern=MAIL_ADDRESS_PATTERN)]
