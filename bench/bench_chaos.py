"""The chaos run, for as long as you like: a steady load of mixed-outcome
dispatches while, in turn and over and over, every process is killed -9 and
started again, the broker is stopped and started, the webhook receiver
answers 503 for a while, and the provider answers 503 and then times out for
a while (`tests/integration/chaos.py` has the faults and their lengths).
Prints the counts: accepted, then lost, duplicate final reports, double
sends, missing status webhooks and dead-lettered, which must all be zero.

Runs on a broker of its own (a free port, started and stopped here), so the
restarts disturb nothing else:

    .venv/bin/python bench/bench_chaos.py --minutes 10 [--rate 5] [--instances 2]

``--instances 2`` runs two of every process (and the projectors on one
PostgreSQL store, ``--store-url``, which two projectors need). Exits non-zero
when any count but the first is not zero.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.chaos import run_chaos
from tests.integration.test_broker_restart import Broker


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10, help="cycles of faults until then")
    parser.add_argument("--rate", type=float, default=5, help="dispatches posted a second")
    parser.add_argument("--pause", type=float, default=5, help="seconds between two faults")
    parser.add_argument("--instances", type=int, default=1, help="of every process")
    parser.add_argument("--store-url", default=None, help="PostgreSQL URL (two projectors)")
    args = parser.parse_args()
    if args.instances > 1 and not args.store_url:
        parser.error("--instances above 1 needs --store-url (projectors share one store)")
    scale = {
        kind: args.instances for kind in ("gateway", "processor", "sender", "webhooks", "projector")
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    broker = Broker()
    broker.run("start")
    try:
        run = await run_chaos(
            broker,
            tmp,
            rate=args.rate,
            minutes=args.minutes,
            pause_s=args.pause,
            scale=scale,
            store_url=args.store_url,
        )
    finally:
        broker.run("stop")
    print("\nfaults:")
    print("\n".join(run.timeline))
    print(f"\nanswers to POST /v0.1/dispatch: {run.answers} (0: no answer)")
    print(f"accepted {run.accepted_rate:.1f} dispatches/s over the run")
    print(run.tally.table())
    for problem in run.tally.problems[:40]:
        print(f"  {problem}")
    for answer in run.unexpected_answers[:10]:
        print(f"  unexpected answer: {answer}")
    if run.processes_down_at_end:
        print(f"processes not running at the end: {run.processes_down_at_end}")
    t = run.tally
    bad = (
        t.lost
        + t.duplicate_finals
        + t.double_sends
        + t.missing_status_webhooks
        + t.dead_lettered
        + t.wrong_final_status
        + t.timers_missing
        + t.timers_fired_twice
        + len(run.processes_down_at_end)
        + len(run.unexpected_answers)
    )
    if bad:
        print(f"logs kept in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
