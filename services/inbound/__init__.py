"""Inbound channel statuses: the Messages API status callback endpoint and the
index that maps a provider's ``message_uuid`` back to its dispatch."""
