"""Schemas of everything that travels over Kafka, and the one codec for them.

Events (past tense) are facts appended to ``dispatch.events``; commands
(imperative) are requests to the sender and the webhook deliverer. All are
frozen pydantic models; :mod:`events.codec` is the only place that turns them
into bytes and back.
"""
