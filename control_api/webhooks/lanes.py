"""Each webhook's lane across the nodes of one installation (issue 22).

``webhooks.concurrency_per_webhook`` bounds the attempts a receiver gets at once,
and at 1 (the default) it keeps them in the events' order. A lane of one process
would let every node send its own attempts alongside, so on a shared database each
attempt also holds one of the webhook's ``concurrency_per_webhook`` slots: a job
claim ``webhook-lane:<webhook id>:<slot>`` (``control_api.jobs``), taken before the
delivery row and let go when the attempt ends. A node that dies mid-attempt loses
its slots with its lease, like its other jobs.
"""

from __future__ import annotations

import logging

from control_api.jobs import Jobs

log = logging.getLogger("relaycast.webhooks")


class SharedLanes:
    def __init__(self, jobs: Jobs, cap: int) -> None:
        self._jobs = jobs
        self._cap = cap
        self._held: set[str] = set()

    async def enter(self, webhook_id: str) -> str | None:
        """A free slot of the webhook's lane, now held by this process; None when
        every slot is held (by attempts of this node or of others)."""
        for slot in range(self._cap):
            job = f"webhook-lane:{webhook_id}:{slot}"
            if job in self._held:
                continue
            # again: a claim of this process on a slot none of its attempts holds is
            # one it could not let go of (the database failed then): take it back
            if await self._jobs.lead(job):
                self._held.add(job)
                return job
        return None

    async def leave(self, job: str) -> None:
        """The slot stays this process's until its claim is gone: taken again meanwhile,
        the release would delete the new attempt's claim."""
        try:
            await self._jobs.release(job)
        except Exception:  # held on with the node's lease; enter() takes it back
            log.warning("could not let go of webhook lane slot %s", job, exc_info=True)
        finally:
            self._held.discard(job)
