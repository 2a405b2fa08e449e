"""Delivers signed status and final-report webhooks with durable retries."""
