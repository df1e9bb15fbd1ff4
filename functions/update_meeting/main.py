"""Cloud Function update_meeting: PATCH /v1/meetings/{id} (reschedule, retitle, invitees)."""
import functions_framework

from shared.services import meetings
from shared.web.app import Context, FunctionApp
from shared.web.models import MeetingUpdate

app = FunctionApp("update_meeting")


@app.route("updateMeeting")
def update(ctx: Context, meeting_id: str):
    d = ctx.deps
    return meetings.update_meeting(meeting_id, ctx.body(MeetingUpdate), principal=ctx.principal, db=d.db,
                                   calendar=d.calendar, meet=d.meet, tasks=d.tasks, settings=d.settings,
                                   clock=d.clock)


update_meeting = functions_framework.http(app)
