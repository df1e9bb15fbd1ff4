"""Cloud Function sync_recordings (internal): one meeting from a Cloud Task, or a sweep from Cloud Scheduler."""
import functions_framework

from shared.services import jobs, recordings
from shared.web.app import Context, FunctionApp
from shared.web.models import InternalRequest

app = FunctionApp("sync_recordings")


@app.route("syncRecordings")
def sync(ctx: Context):
    d = ctx.deps

    def one(meeting_id, _version=None, attempt=0):
        # Adapters are touched only here: a sweep that just enqueues tasks never loads the Google client.
        return recordings.sync_meeting(meeting_id, attempt=attempt, db=d.db, meet=d.meet, tasks=d.tasks,
                                       settings=d.settings, clock=d.clock)

    def sweep():
        return recordings.sweep(db=d.db, tasks=d.tasks, settings=d.settings, clock=d.clock,
                                sync=lambda meeting_id, attempt: one(meeting_id, attempt=attempt))

    return jobs.run("sync_recordings", ctx.body(InternalRequest), task_name=ctx.task_name, ledger=d.ledger,
                    one=one, sweep=sweep)


sync_recordings = functions_framework.http(app)
