"""What the process knows of its calls: the live-call table, the call registry and its ledger,
admission and drain state, and the event bus that fans call events out to watchers.

Shared by the subsystems that serve calls (twilio), steer them (admin) and count them
(observability); it imports none of them.
"""
