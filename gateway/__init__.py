"""The gateway service, one subpackage per subsystem (see the README's Layout): process,
net, twilio, ai, calls, admin, observability, settings, simulator."""
