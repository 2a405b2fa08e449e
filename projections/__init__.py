"""Read models folded from ``dispatch.events``: the workflow view and each
dispatch's ordered history, for the GET endpoints, audit and replay."""
