"""Cloud Scheduler jobs of the project: list them, pause or resume one, or run one now."""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from datetime import timezone
from typing import Any

from google.api_core import exceptions, retry
from google.auth.exceptions import DefaultCredentialsError

CALL_TIMEOUT_SECONDS = 30.0
_SHORT_NAME = re.compile(r"[A-Za-z0-9_-]{1,500}")
# Listing, pausing and resuming are idempotent, so transient failures are retried; running a job is not.
_IDEMPOTENT_RETRY = retry.Retry(
    predicate=retry.if_exception_type(exceptions.ServiceUnavailable, exceptions.DeadlineExceeded),
    initial=0.5, maximum=5.0, multiplier=2.0, timeout=CALL_TIMEOUT_SECONDS,
)


class CommandError(Exception):
    """A problem to report to the operator as one line, with an exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def scheduler_client():
    """A Cloud Scheduler client with the caller's Application Default Credentials."""
    from google.cloud import scheduler_v1

    return scheduler_v1.CloudSchedulerClient()


def job_path(project: str, location: str, job: str) -> str:
    """The full resource name of a job given short (`check-status-sweep`) or already full."""
    if job.startswith("projects/"):
        return job
    if not _SHORT_NAME.fullmatch(job):
        raise CommandError(f"invalid job name {job!r}: use letters, digits, hyphens and underscores", 2)
    return f"projects/{project}/locations/{location}/jobs/{job}"


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _when(value: Any) -> str:
    if not value:
        return "never"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _target(job: Any) -> str:
    if "http_target" in job:
        return job.http_target.uri
    if "pubsub_target" in job:
        return job.pubsub_target.topic_name
    if "app_engine_http_target" in job:
        return f"appengine:{job.app_engine_http_target.relative_uri}"
    return "-"


def _schedule(job: Any) -> str:
    return f"{job.schedule} ({job.time_zone or 'UTC'})" if job.schedule else "-"


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]).rstrip())


def _list(client: Any, parent: str) -> None:
    jobs = list(client.list_jobs(parent=parent, retry=_IDEMPOTENT_RETRY, timeout=CALL_TIMEOUT_SECONDS))
    if not jobs:
        print(f"no jobs in {parent}")
        return
    rows = [("NAME", "SCHEDULE", "STATE", "LAST ATTEMPT", "TARGET")]
    rows += [(_short(job.name), _schedule(job), job.state.name, _when(job.last_attempt_time), _target(job))
             for job in sorted(jobs, key=lambda job: job.name)]
    _print_table(rows)


def _run(args: argparse.Namespace, client: Any) -> None:
    parent = f"projects/{args.project}/locations/{args.location}"
    if args.command == "list":
        try:
            _list(client, parent)
        except exceptions.NotFound as exc:
            raise CommandError(f"location {parent} not found: {exc.message}") from exc
        return
    name = job_path(args.project, args.location, args.job)
    try:
        if args.command == "pause":
            job = client.pause_job(name=name, retry=_IDEMPOTENT_RETRY, timeout=CALL_TIMEOUT_SECONDS)
            print(f"{_short(job.name)}: {job.state.name}")
        elif args.command == "resume":
            job = client.resume_job(name=name, retry=_IDEMPOTENT_RETRY, timeout=CALL_TIMEOUT_SECONDS)
            print(f"{_short(job.name)}: {job.state.name}")
        else:
            job = client.run_job(name=name, retry=None, timeout=CALL_TIMEOUT_SECONDS)
            print(f"{_short(job.name)}: run requested (state {job.state.name}, "
                  f"last attempt {_when(job.last_attempt_time)})")
    except exceptions.NotFound as exc:
        raise CommandError(f"job {_short(name)} not found in {parent}") from exc


def main(argv: list[str] | None = None, client: Any = None) -> int:
    """Run one command; 0 on success, 1 when Cloud Scheduler refuses or fails, 2 on bad usage."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT"),
                        help="project id (default: $GOOGLE_CLOUD_PROJECT)")
    common.add_argument("--location", default=os.environ.get("SCHEDULER_LOCATION"),
                        help="Cloud Scheduler region (default: $SCHEDULER_LOCATION)")
    parser = argparse.ArgumentParser(prog="python -m ops.scheduler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="name, schedule, state, last attempt and target of every job")
    for command, text in (("pause", "pause a job"), ("resume", "resume a paused job"), ("run", "run a job now")):
        sub.add_parser(command, parents=[common], help=text).add_argument("job", help="short or full job name")
    args = parser.parse_args(argv)

    try:
        if not args.project:
            raise CommandError("no project: pass --project or set GOOGLE_CLOUD_PROJECT", 2)
        if not args.location:
            raise CommandError("no location: pass --location or set SCHEDULER_LOCATION", 2)
        _run(args, client if client is not None else scheduler_client())
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except exceptions.PermissionDenied as exc:
        print(f"error: permission denied in projects/{args.project}/locations/{args.location}: {exc.message}",
              file=sys.stderr)
        return 1
    except DefaultCredentialsError:
        print("error: no Google credentials: run `gcloud auth application-default login`", file=sys.stderr)
        return 1
    except exceptions.RetryError as exc:
        print(f"error: Cloud Scheduler did not answer in time: {exc.cause or exc}", file=sys.stderr)
        return 1
    except exceptions.GoogleAPICallError as exc:
        print(f"error: Cloud Scheduler refused ({type(exc).__name__}): {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
