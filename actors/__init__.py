"""The per-call actor system: channels, supervisor, the four actors, sans-I/O protocols, DSP.

Knows nothing of HTTP servers, configuration files or Redis; `gateway` imports it,
never the reverse.
"""
