"""The sender: turns ``SendMessage`` commands into Messages API calls, at most
once per command, and appends the outcome to ``dispatch.events``."""
