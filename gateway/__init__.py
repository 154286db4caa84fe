"""The gateway service: control plane, media endpoint, configuration, local agent, simulator."""
