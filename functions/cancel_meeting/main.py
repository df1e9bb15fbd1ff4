"""Cloud Function cancel_meeting: DELETE /v1/meetings/{id}."""
import functions_framework

from shared.services import meetings
from shared.web.app import Context, FunctionApp

app = FunctionApp("cancel_meeting")


@app.route("cancelMeeting")
def cancel(ctx: Context, meeting_id: str):
    d = ctx.deps
    return meetings.cancel_meeting(meeting_id, principal=ctx.principal, db=d.db, calendar=d.calendar, clock=d.clock)


cancel_meeting = functions_framework.http(app)
