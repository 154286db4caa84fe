"""Every secret the suite configures, and a check that no log line of the suite shows one.

Each `Secret` created while the suite runs is remembered (the public development tokens
aside); whatever the gateway writes is scanned for them: the in-process log lines of
integration tests, the captured output of every test, and every line of the gateway
processes the end-to-end tests start.
"""

from __future__ import annotations

from gateway.settings import DEV_ADMIN_TOKEN, DEV_TWILIO_AUTH_TOKEN
from gateway.settings.secret import Secret

PUBLIC = frozenset({DEV_TWILIO_AUTH_TOKEN, DEV_ADMIN_TOKEN})
SECRETS: set[str] = set()
process_lines: list[str] = []  # lines of gateway processes not yet checked


def watch(value: str) -> None:
    """Remember a secret the suite hands a process by other means (its environment)."""
    if len(value) >= 8 and value not in PUBLIC:
        SECRETS.add(value)


def install() -> None:
    """Remember every Secret's value from now on."""
    original = Secret.__init__

    def remembering(self: Secret, value: str) -> None:
        original(self, value)
        watch(value)

    Secret.__init__ = remembering  # type: ignore[method-assign]


def leaks(text: str) -> list[str]:
    """The secrets `text` shows, each cut to its first four characters for the report."""
    return sorted(f"{secret[:4]}... ({len(secret)} characters)" for secret in SECRETS if secret in text)
