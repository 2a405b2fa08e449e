"""The processor's runtime: the only code that reaches into faust-streaming and
aiokafka internals. Each module lists the private attributes it touches, and
``tests/unit/processor/test_runtime_contract.py`` pins each of them against the
installed versions, so an upgrade that moves one fails there, loudly."""
