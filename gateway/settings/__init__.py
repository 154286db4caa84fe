"""Settings: built-in defaults, then a TOML file, then environment variables.

`secret` hides values from logs, `parsers` turn what users write into values, `fields` is
the table of every setting, `model` the frozen record a process runs with, and `loading`
builds it (one `ConfigError` line naming the setting when something is wrong).
"""

from gateway.settings.loading import load_settings
from gateway.settings.model import (
    DEV_ADMIN_TOKEN,
    DEV_TWILIO_ACCOUNT_SID,
    DEV_TWILIO_AUTH_TOKEN,
    ConfigError,
    Settings,
    websocket_url,
)
from gateway.settings.parsers import is_loopback
from gateway.settings.secret import Secret

__all__ = [
    "DEV_ADMIN_TOKEN",
    "DEV_TWILIO_ACCOUNT_SID",
    "DEV_TWILIO_AUTH_TOKEN",
    "ConfigError",
    "Secret",
    "Settings",
    "is_loopback",
    "load_settings",
    "websocket_url",
]
