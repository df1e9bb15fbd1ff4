"""Cloud Function check_status (internal): one meeting from a Cloud Task, or a sweep from Cloud Scheduler."""
import functions_framework

from shared.services import jobs, status_check
from shared.web.app import Context, FunctionApp
from shared.web.models import InternalRequest

app = FunctionApp("check_status")


@app.route("checkStatus")
def check(ctx: Context):
    d = ctx.deps

    def one(meeting_id, version=None, _attempt=0):
        # Adapters are touched only here: a sweep that just enqueues tasks never loads the Google client.
        return status_check.check_meeting(meeting_id, schedule_version=version, db=d.db, calendar=d.calendar,
                                          meet=d.meet, tasks=d.tasks, settings=d.settings, clock=d.clock)

    def sweep():
        return status_check.sweep(db=d.db, tasks=d.tasks, settings=d.settings, clock=d.clock, check=one)

    return jobs.run("check_status", ctx.body(InternalRequest), task_name=ctx.task_name, ledger=d.ledger,
                    one=one, sweep=sweep)


check_status = functions_framework.http(app)
