"""The HTTP gateway: accepts dispatches and channel statuses, serves read endpoints."""
