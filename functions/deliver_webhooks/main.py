"""Cloud Function deliver_webhooks (internal): one attempt of one delivery from a Cloud Task, or the sweep."""
import functions_framework

from shared.services import jobs, webhooks
from shared.web.app import Context, FunctionApp
from shared.web.webhook_models import DeliveryRequest, DeliverySummary

app = FunctionApp("deliver_webhooks")


@app.route("deliverWebhooks")
def deliver(ctx: Context):
    d = ctx.deps
    request = ctx.body(DeliveryRequest)

    def one(delivery_id, attempt):
        return webhooks.deliver(delivery_id, attempt, db=d.db, box=d.secret_box, sender=d.webhook_sender,
                                tasks=d.webhook_tasks, settings=d.settings, clock=d.clock)

    if request.delivery_id is None:
        return jobs.run_sweep("deliver_webhooks", ledger=d.ledger, sweep=lambda: webhooks.sweep(
            db=d.db, tasks=d.webhook_tasks, settings=d.settings, clock=d.clock, deliver_one=one))
    # Deduped on what the task does: its name must be the one this body's delivery and attempt are enqueued under.
    name = jobs.checked_task_name(ctx.task_name, webhooks.task_name_of(request.delivery_id, request.attempt),
                                  describes="delivery_id and attempt", tagged=True)
    return jobs.run_task("deliver_webhooks", task_name=name, ledger=d.ledger,
                         work=lambda: one(request.delivery_id, request.attempt),
                         duplicate=lambda: DeliverySummary(mode="delivery", outcome="duplicate",
                                                           delivery_id=request.delivery_id,
                                                           detail="this task was already delivered and done"))


deliver_webhooks = functions_framework.http(app)
