"""The failover engine: folds ``dispatch.events`` into per-dispatch state, runs
durable timers and decides the next step of every dispatch.

``state``, ``fold``, ``decide``, ``payloads`` and ``timers`` are pure (no I/O,
no faust); ``app`` and ``main`` are the faust edge that feeds them.
"""
