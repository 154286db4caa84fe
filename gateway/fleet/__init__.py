"""The fleet: instances of the gateway sharing call records, commands and events in Redis."""
