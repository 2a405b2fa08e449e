"""The operator console: server-rendered pages over the projection store."""
