"""The local agent: a loopback realtime-protocol server, the gateway's embedded default.

It runs in-process on a loopback port and the gateway reaches it over a real WebSocket
with the same client code it uses for OpenAI. It greets, detects the end of the
caller's speech by energy, plays the utterance back, and stops when interrupted. It is
a test partner and a way to hear the call path work without a cloud account, not an AI.
"""

from gateway.ai.local_agent.options import AgentOptions
from gateway.ai.local_agent.server import serve_local_agent

__all__ = ["AgentOptions", "serve_local_agent"]
