"""The processes of Dispatch: gateway, processor, sender, webhooks, simulator, CLI."""
