"""What a call's actors may ask of the telephony side (Twilio REST, behind the gateway)."""

from __future__ import annotations

from typing import Protocol


class CallControlError(Exception):
    """The telephony side refused or failed; the message says why (Twilio's code and text)."""


class CallControl(Protocol):
    """Control of one live call's PSTN leg."""

    async def hang_up(self) -> None:
        """End the call; a call that already ended counts as success."""
        ...

    async def transfer(self, destination: str) -> None:
        """Replace the call's TwiML with a `<Dial>` to `destination` (E.164)."""
        ...
