"""Realtime AI providers: endpoints, the connector (with pre-warm), call settings, the local agent."""
