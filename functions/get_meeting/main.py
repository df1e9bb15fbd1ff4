"""Cloud Function get_meeting: every read of the API (meetings, clinicians' availability), its health and docs.

Availability lives here because it is a read: a query to Google Calendar that writes nothing."""
import functions_framework

from shared.services import availability, meetings
from shared.services import health as health_check
from shared.web import docs_page
from shared.web.app import Context, FunctionApp, Reply
from shared.web.models import AvailabilityQuery, MeetingListQuery

app = FunctionApp("get_meeting")


@app.route("listMeetings")
def list_meetings(ctx: Context):
    query = ctx.query(MeetingListQuery)
    return meetings.list_meetings(query, principal=ctx.principal, db=ctx.deps.db, settings=ctx.deps.settings)


@app.route("getMeeting")
def get_one(ctx: Context, meeting_id: str):
    return meetings.get_meeting(meeting_id, principal=ctx.principal, db=ctx.deps.db)


@app.route("listParticipants")
def participants(ctx: Context, meeting_id: str):
    return meetings.list_participants(meeting_id, principal=ctx.principal, db=ctx.deps.db)


@app.route("listRecordings")
def recordings(ctx: Context, meeting_id: str):
    return meetings.list_recordings(meeting_id, principal=ctx.principal, db=ctx.deps.db)


@app.route("getAvailability")
def busy_times(ctx: Context):
    d = ctx.deps
    return availability.busy_times(ctx.query(AvailabilityQuery), calendar=d.calendar, settings=d.settings,
                                   clock=d.clock)


@app.route("health")
def health(ctx: Context):
    report = health_check.check(db=ctx.deps.db)
    if report.status == "ok":
        return report
    return Reply(report, status=503, headers={"Retry-After": str(ctx.deps.settings.retry_after_seconds)})


@app.route("openapi")
def openapi_document(ctx: Context):
    from shared.web import openapi  # the document builds every model's schema: only when asked for

    return openapi.served(openapi.origin(ctx.request.headers, ctx.request.host_url))


@app.route("docs")
def docs(ctx: Context):
    return Reply(docs_page.PAGE, content_type="text/html", headers=docs_page.PAGE_HEADERS)


@app.route("docsAsset")
def docs_asset(ctx: Context, asset: str):
    content_type, text = docs_page.asset(asset)
    return Reply(text, content_type=content_type, headers=docs_page.ASSET_HEADERS)


get_meeting = functions_framework.http(app)
