"""The one route table: the functions dispatch from it, the local gateway routes by it, OpenAPI and API Gateway
derive from it."""
from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass, field

from pydantic import BaseModel
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from shared.web import models as m

# A model named by "module.Class" is imported when the API document asks for it: the webhooks' models are named so,
# and a function that serves no webhook route never loads them.
ModelRef = type[BaseModel] | str | None


def _wm(name: str) -> str:
    return f"shared.web.webhook_models.{name}"


def _model(ref: ModelRef) -> type[BaseModel] | None:
    if isinstance(ref, str):
        module, _, name = ref.rpartition(".")
        return getattr(importlib.import_module(module), name)
    return ref


@dataclass(frozen=True)
class Route:
    """One method and path, the function that serves it and the shapes it speaks."""

    method: str
    path: str
    function: str
    operation_id: str
    summary: str
    auth: str = "key"  # "key": a client API key; "none": open; "internal": OIDC invoker or admin key
    body: ModelRef = None
    query: ModelRef = None
    response: ModelRef = None
    status: int = 200
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    public: bool = True
    extra_status: tuple[int, ...] = field(default=())
    also: tuple[str, ...] = ()  # further paths served, e.g. "/" where Cloud Tasks calls a function's own URL
    # Answer fields shown once (signing secrets): an Idempotency-Key replay answers them as null, and they are never
    # kept in the idempotency store.
    secret_fields: tuple[str, ...] = ()

    @property
    def body_model(self) -> type[BaseModel] | None:
        return _model(self.body)

    @property
    def query_model(self) -> type[BaseModel] | None:
        return _model(self.query)

    @property
    def response_model(self) -> type[BaseModel] | None:
        return _model(self.response)

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def rule(self) -> str:
        """The path as a werkzeug rule: `{meeting_id}` becomes `<meeting_id>`."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


_READ_ERRORS = (401, 404, 503)

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/meetings", "create_meeting", "createMeeting",
          "Create a Meet video appointment (idempotent per external_reference)",
          body=m.MeetingCreate, response=m.MeetingOut, status=201, extra_status=(200,),
          errors=(400, 401, 409, 413, 415, 422, 502, 503)),
    Route("PATCH", "/v1/meetings/{meeting_id}", "update_meeting", "updateMeeting",
          "Reschedule, retitle or change the invitees; the Meet link stays", body=m.MeetingUpdate,
          response=m.MeetingOut, errors=(400, 401, 404, 409, 413, 415, 422, 502, 503)),
    Route("DELETE", "/v1/meetings/{meeting_id}", "cancel_meeting", "cancelMeeting",
          "Cancel the meeting and its Calendar event, notifying the invitees", response=m.MeetingOut,
          errors=(401, 404, 409, 502, 503)),
    Route("GET", "/v1/meetings", "get_meeting", "listMeetings", "List meetings, newest first",
          query=m.MeetingListQuery, response=m.MeetingPage, errors=(401, 422, 503)),
    Route("GET", "/v1/meetings/{meeting_id}", "get_meeting", "getMeeting", "Read one meeting",
          response=m.MeetingOut, errors=_READ_ERRORS),
    Route("GET", "/v1/meetings/{meeting_id}/participants", "get_meeting", "listParticipants",
          "The meeting's participants with their attendance", response=m.ParticipantList, errors=_READ_ERRORS),
    Route("GET", "/v1/meetings/{meeting_id}/recordings", "get_meeting", "listRecordings",
          "The meeting's recordings", response=m.RecordingList, errors=_READ_ERRORS),
    Route("GET", "/v1/availability", "get_meeting", "getAvailability",
          "A clinician's busy times from Google Calendar (merged, sorted, at most 90 days)",
          query=m.AvailabilityQuery, response=m.Availability, errors=(401, 422, 502, 503)),
    Route("GET", "/v1/health", "get_meeting", "health", "Liveness and database reachability",
          auth="none", response=m.Health, errors=(503,)),
    Route("GET", "/v1/openapi.json", "get_meeting", "openapi", "This API's OpenAPI 3.1 document", auth="none"),
    Route("GET", "/v1/docs", "get_meeting", "docs", "This API's documentation page", auth="none",
          content_type="text/html"),
    Route("GET", "/v1/docs/{asset}", "get_meeting", "docsAsset", "A script or style sheet of the documentation page",
          auth="none", content_type="text/javascript", errors=(404,)),
    Route("POST", "/internal/check-status", "check_status", "checkStatus",
          "Reconcile one meeting with Google, or sweep the due ones", auth="internal", body=m.InternalRequest,
          response=m.JobSummary, public=False, also=("/", "/check_status"), errors=(400, 401, 403, 404, 409, 503)),
    Route("POST", "/internal/sync-recordings", "sync_recordings", "syncRecordings",
          "Sync attendance and recordings of one meeting, or sweep the due ones", auth="internal",
          body=m.InternalRequest, response=m.JobSummary, public=False, also=("/", "/sync_recordings"),
          errors=(400, 401, 403, 404, 409, 503)),
    # Push events: a client's webhook endpoints and their deliveries, and the internal function that delivers.
    Route("POST", "/v1/webhook-endpoints", "manage_webhooks", "createWebhookEndpoint",
          "Register a webhook endpoint; its signing secret is shown in this answer only",
          body=_wm("WebhookEndpointCreate"), response=_wm("WebhookEndpointCreated"), status=201,
          errors=(400, 401, 409, 413, 415, 422, 503), secret_fields=("secret",)),
    Route("GET", "/v1/webhook-endpoints", "manage_webhooks", "listWebhookEndpoints", "The client's webhook endpoints",
          response=_wm("WebhookEndpointList"), errors=(401, 503)),
    Route("GET", "/v1/webhook-endpoints/{endpoint_id}", "manage_webhooks", "getWebhookEndpoint",
          "Read one webhook endpoint (without its secret)", response=_wm("WebhookEndpointOut"), errors=_READ_ERRORS),
    Route("DELETE", "/v1/webhook-endpoints/{endpoint_id}", "manage_webhooks", "deleteWebhookEndpoint",
          "Delete a webhook endpoint: nothing more is sent to it", status=204, errors=_READ_ERRORS),
    Route("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "manage_webhooks", "rotateWebhookSecret",
          "A new signing secret; for 24 h deliveries are signed with the new and the previous one",
          response=_wm("WebhookSecret"), errors=_READ_ERRORS, secret_fields=("secret",)),
    Route("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries", "manage_webhooks", "listWebhookDeliveries",
          "The endpoint's deliveries, newest first", query=_wm("WebhookDeliveryQuery"),
          response=_wm("WebhookDeliveryPage"), errors=(401, 404, 422, 503)),
    Route("POST", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry", "manage_webhooks",
          "retryWebhookDelivery", "Send a delivery again now, with the same webhook-id",
          response=_wm("WebhookDeliveryOut"), status=202, errors=(401, 404, 409, 503)),
    Route("POST", "/internal/deliver-webhooks", "deliver_webhooks", "deliverWebhooks",
          "Send one attempt of one webhook delivery, or sweep the overdue ones", auth="internal",
          body=_wm("DeliveryRequest"), response=_wm("DeliverySummary"), public=False, also=("/", "/deliver_webhooks"),
          errors=(400, 401, 403, 409, 503)),
)


def routes_of(function: str) -> tuple[Route, ...]:
    """The routes one function serves."""
    return tuple(r for r in ROUTES if r.function == function)


OPERATIONS: dict[str, Route] = {r.operation_id: r for r in ROUTES}


def url_map(routes: tuple[Route, ...] = ROUTES, *, aliases: bool = True) -> Map:
    """A werkzeug Map of `routes` whose endpoints are operation ids; `aliases` adds the functions' extra paths."""
    return _url_map(routes, aliases)


@functools.lru_cache(maxsize=32)
def _url_map(routes: tuple[Route, ...], aliases: bool) -> Map:
    rules = []
    for route in routes:
        rules.append(Rule(route.rule, endpoint=route.operation_id, methods=[route.method]))
        if aliases:
            rules += [Rule(path, endpoint=route.operation_id, methods=[route.method]) for path in route.also]
    # strict_slashes off: "/v1/meetings/" is served as "/v1/meetings" rather than redirected.
    return Map(rules, strict_slashes=False, merge_slashes=False)


def allowed_methods(error: MethodNotAllowed) -> list[str]:
    """The table's methods on a path whose method werkzeug refused (HEAD rides along with GET), sorted: werkzeug
    gives them in set order, which changes from one process to the next."""
    return sorted(m for m in (error.valid_methods or []) if m not in ("HEAD", "OPTIONS"))


def resolve(method: str, path: str, routes: tuple[Route, ...] = ROUTES, *,
            aliases: bool = True) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, path params, allowed methods) for a request; route is None on 404 (no methods) or 405.

    `aliases=False` ignores a function's extra paths (the gateway routes only the table's own paths).
    """
    adapter = url_map(routes, aliases=aliases).bind("localhost")
    try:
        operation, params = adapter.match(path, method=method)
    except MethodNotAllowed as error:
        return None, {}, allowed_methods(error)
    except (NotFound, RequestRedirect):
        return None, {}, []
    return OPERATIONS[operation], dict(params), []


FUNCTIONS: tuple[str, ...] = tuple(dict.fromkeys(r.function for r in ROUTES))
