"""Cloud Function sync_recordings (internal): one meeting from a Cloud Task, or a sweep from Cloud Scheduler."""
import functools

import functions_framework

from shared import jobs, recordings
from shared.http import Context, FunctionApp
from shared.models import InternalRequest

app = FunctionApp("sync_recordings")


@app.route("syncRecordings")
def sync(ctx: Context):
    d = ctx.deps
    one = functools.partial(recordings.sync_meeting, db=d.db, meet=d.meet, directory=d.directory, drive=d.drive,
                            tasks=d.tasks, settings=d.settings, clock=d.clock)
    sweep = functools.partial(recordings.sweep, db=d.db, tasks=d.tasks, settings=d.settings, clock=d.clock,
                              sync=lambda meeting_id, attempt: one(meeting_id, attempt=attempt))
    return jobs.run("sync_recordings", ctx.body(InternalRequest), task_name=ctx.task_name, ledger=d.ledger,
                    one=lambda meeting_id, _version, attempt: one(meeting_id, attempt=attempt), sweep=sweep)


sync_recordings = functions_framework.http(app)
