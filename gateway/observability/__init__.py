"""What the gateway tells operators: structured logs, the log schema, Prometheus metrics, probes."""
