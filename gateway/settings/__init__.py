"""Settings: built-in defaults, then a TOML file, then environment variables."""

from gateway.settings.fields import (
    DEV_ADMIN_TOKEN,
    DEV_TWILIO_ACCOUNT_SID,
    DEV_TWILIO_AUTH_TOKEN,
    ConfigError,
    Secret,
    Settings,
    is_loopback,
    load_settings,
    websocket_url,
)

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
