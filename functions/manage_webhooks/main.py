"""Cloud Function manage_webhooks: a client's webhook endpoints and their deliveries."""
import functions_framework

from shared.services import webhooks
from shared.web.app import Context, FunctionApp, Reply
from shared.web.webhook_models import WebhookDeliveryQuery, WebhookEndpointCreate

app = FunctionApp("manage_webhooks")


@app.route("createWebhookEndpoint")
def create(ctx: Context) -> Reply:
    d = ctx.deps
    endpoint = webhooks.create_endpoint(ctx.body(WebhookEndpointCreate), principal=ctx.principal, db=d.db,
                                        box=d.secret_box, sender=d.webhook_sender)
    return Reply(endpoint, status=201, headers={"Location": f"/v1/webhook-endpoints/{endpoint.id}"})


@app.route("listWebhookEndpoints")
def list_all(ctx: Context):
    return webhooks.list_endpoints(principal=ctx.principal, db=ctx.deps.db)


@app.route("getWebhookEndpoint")
def get_one(ctx: Context, endpoint_id: str):
    return webhooks.get_endpoint(endpoint_id, principal=ctx.principal, db=ctx.deps.db)


@app.route("deleteWebhookEndpoint")
def delete(ctx: Context, endpoint_id: str) -> Reply:
    webhooks.delete_endpoint(endpoint_id, principal=ctx.principal, db=ctx.deps.db)
    return Reply("", status=204)


@app.route("rotateWebhookSecret")
def rotate(ctx: Context, endpoint_id: str):
    d = ctx.deps
    return webhooks.rotate_secret(endpoint_id, principal=ctx.principal, db=d.db, box=d.secret_box, clock=d.clock)


@app.route("listWebhookDeliveries")
def deliveries(ctx: Context, endpoint_id: str):
    return webhooks.list_deliveries(endpoint_id, ctx.query(WebhookDeliveryQuery), principal=ctx.principal,
                                    db=ctx.deps.db, settings=ctx.deps.settings)


@app.route("retryWebhookDelivery")
def retry(ctx: Context, endpoint_id: str, delivery_id: str) -> Reply:
    d = ctx.deps

    def send(delivery, attempt):
        return webhooks.deliver(delivery, attempt, db=d.db, box=d.secret_box, sender=d.webhook_sender,
                                tasks=d.webhook_tasks, settings=d.settings, clock=d.clock)

    delivery = webhooks.retry_delivery(endpoint_id, delivery_id, principal=ctx.principal, db=d.db,
                                       tasks=d.webhook_tasks, settings=d.settings, clock=d.clock, send=send)
    return Reply(delivery, status=202)


manage_webhooks = functions_framework.http(app)
