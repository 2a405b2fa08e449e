"""The failover workflow written for Temporal, as a Python user of its SDK
would write it: the peer ``bench_peer_temporal.py`` measures Dispatch against.

Per step: an activity sends the message to the provider; the workflow then
waits for status signals, each one webhooked by an activity, until the step's
condition status arrives (success), a failure status arrives or the step's
expiry passes (fail over to the next step). One final report at the end.

This module is imported inside Temporal's workflow sandbox: standard library
and ``temporalio`` only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

TASK_QUEUE = "dispatch-peer"
# A step without a failover rule (the last) waits this long for a final status.
LAST_STEP_EXPIRY_S = 600
FAILED = {"rejected", "undeliverable", "failed"}
# The provider's 5xx are retried (as Dispatch's sender does); a refusal is not.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_attempts=5,
    non_retryable_error_types=["Refused"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=10)


def client_ref(dispatch_uuid: str, step: int) -> str:
    """The provider's ``client_ref`` of a step: the status endpoint finds the
    workflow and the step from it."""
    return f"{dispatch_uuid}:{step}"


@workflow.defn(name="Failover")
class FailoverWorkflow:
    def __init__(self) -> None:
        # Status callbacks by step, in arrival order; a signal may arrive
        # before the send activity's result is recorded.
        self._statuses: dict[int, list[dict[str, Any]]] = {}

    @workflow.signal
    def status(self, status: dict[str, Any]) -> None:
        self._statuses.setdefault(int(status["step"]), []).append(status)

    @workflow.run
    async def run(self, request: dict[str, Any]) -> str:
        dispatch_uuid = request["dispatch_uuid"]
        outcome = "failed"
        for index, step in enumerate(request["workflow"]):
            result = await self._run_step(request, index, step)
            if result == "succeeded":
                outcome = "completed"
                break
        await workflow.execute_activity(
            "post_webhook",
            args=[
                request["final_report_url"],
                {"dispatch_uuid": dispatch_uuid, "status": outcome},
                request["application_id"],
            ],
            start_to_close_timeout=ACTIVITY_TIMEOUT,
        )
        return outcome

    async def _run_step(self, request: dict[str, Any], index: int, step: dict[str, Any]) -> str:
        dispatch_uuid = request["dispatch_uuid"]
        try:
            await workflow.execute_activity(
                "send_message",
                args=[step, client_ref(dispatch_uuid, index)],
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=SEND_RETRY,
            )
        except ActivityError:
            return "rejected"
        failover = step.get("failover")
        expiry_s = failover["expiry_time"] if failover else LAST_STEP_EXPIRY_S
        wanted = {"read"} if failover and failover["condition_status"] == "read" else None
        deadline = workflow.now() + timedelta(seconds=expiry_s)
        arrived = self._statuses.setdefault(index, [])
        seen = 0
        while True:
            remaining = (deadline - workflow.now()).total_seconds()
            try:
                await workflow.wait_condition(
                    lambda seen=seen: len(arrived) > seen,  # type: ignore[misc]
                    timeout=max(remaining, 0.001),
                )
            except TimeoutError:
                return "expired"
            status = arrived[seen]
            seen += 1
            await workflow.execute_activity(
                "post_webhook",
                args=[
                    request["status_url"],
                    {"dispatch_uuid": dispatch_uuid, "step": index, **status},
                    request["application_id"],
                ],
                start_to_close_timeout=ACTIVITY_TIMEOUT,
            )
            name = status["status"]
            if name in FAILED:
                return "failed"
            if (wanted is None and name in ("delivered", "read")) or (wanted and name in wanted):
                return "succeeded"
