"""Cloud Function check_status (internal): one meeting from a Cloud Task, or a sweep from Cloud Scheduler."""
import functools

import functions_framework

from shared import jobs, status_check
from shared.http import Context, FunctionApp
from shared.models import InternalRequest

app = FunctionApp("check_status")


@app.route("checkStatus")
def check(ctx: Context):
    d = ctx.deps
    one = functools.partial(status_check.check_meeting, db=d.db, calendar=d.calendar, meet=d.meet, tasks=d.tasks,
                            settings=d.settings, clock=d.clock)
    sweep = functools.partial(status_check.sweep, db=d.db, tasks=d.tasks, settings=d.settings, clock=d.clock,
                              check=lambda meeting_id: one(meeting_id, schedule_version=None))
    return jobs.run("check_status", ctx.body(InternalRequest), task_name=ctx.task_name, ledger=d.ledger,
                    one=lambda meeting_id, version, _attempt: one(meeting_id, schedule_version=version), sweep=sweep)


check_status = functions_framework.http(app)
