"""The RQ worker class every `rqworker` runs (settings.RQ["WORKER_CLASS"]).

rq's own worker, with one addition: before forking the work-horse that runs a job, the worker
makes sure the Entra ID tokens jobs use are fresh in its own memory (azure.share_tokens), so the
fork inherits them. Without it, every forked job that calls Azure would first ask Entra ID for a
token: a discovery and a token request, about seven per build.
"""

from __future__ import annotations

from rq import Worker as RQWorker

from builds import azure


class Worker(RQWorker):
    def fork_work_horse(self, job, queue):
        azure.share_tokens()
        super().fork_work_horse(job, queue)
