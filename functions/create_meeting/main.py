"""Cloud Function create_meeting: POST /v1/meetings."""
import functions_framework

from shared.services import meetings
from shared.web.app import Context, FunctionApp, Reply
from shared.web.models import MeetingCreate

app = FunctionApp("create_meeting")


@app.route("createMeeting")
def create(ctx: Context) -> Reply:
    d = ctx.deps
    meeting, created = meetings.create_meeting(ctx.body(MeetingCreate), principal=ctx.principal, db=d.db,
                                               calendar=d.calendar, meet=d.meet, tasks=d.tasks, settings=d.settings,
                                               clock=d.clock)
    return Reply(meeting, status=201 if created else 200, headers={"Location": f"/v1/meetings/{meeting.id}"})


create_meeting = functions_framework.http(app)
