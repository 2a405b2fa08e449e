"""The failover template's rules, and nothing else: pure functions over typed state.

Everything that decides what happens to a dispatch lives here: the state a
dispatch is in (:mod:`.state`, :mod:`.workflow`), how each event changes it
(:mod:`.fold`), what follows from it (:mod:`.decide`), which deadline is armed
(:mod:`.deadlines`), and every event, command and id the rules produce
(:mod:`.factories`, the one place ids are built; :mod:`.payloads`, the webhook
bodies). No I/O, no Kafka, no faust, no JSON codec, no module-level caches:
time enters only through event timestamps and ``Tick.now``.

It sits under ``services/`` because the DESIGN fixes the top-level layout
(``services/``, ``events/``, ``projections/``, ...) and the rules are shared by
a service and the read side: the processor (``services/processor``) applies
them to its tables, and the projector's workflow view and the decision replay
(``projections/``) fold the same events through the same functions.
"""
