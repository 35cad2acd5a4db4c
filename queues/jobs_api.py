"""JSON API for HSI's jobs (both keyspaces): list, detail, abort, cancel, delete a stale key and restore
it from the archive; thin views over ``queues.jobs`` and ``queues.jobs_archive`` (as the pages use them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import redis
from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from console.permissions import CanViewConsole
from console.redis import get_redis
from queues import actions, jobs, jobs_archive, keys
from queues.api import ConsoleAPIView, Problem, RestoreSerializer, django_request, errors, requires, validated
from queues.jobs_views import BadQuery, abort_sentence, cancel_sentence, delete_token, moment, stale_job

LIST_LIMIT = 1000
SOURCE_CHOICES = [jobs.TRACKER, jobs.STATUS]


class JobQuerySerializer(serializers.Serializer):
    status = serializers.CharField(
        required=False, allow_blank=True, max_length=20, help_text="e.g. running, cancelled."
    )
    type = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="job_type, e.g. export."
    )
    since = serializers.CharField(
        required=False, allow_blank=True, help_text="Created at or after (ISO time)."
    )
    until = serializers.CharField(
        required=False, allow_blank=True, help_text="Created at or before (ISO time)."
    )
    stale = serializers.BooleanField(required=False, default=False, help_text="Only jobs flagged stale.")
    limit = serializers.IntegerField(min_value=1, max_value=LIST_LIMIT, default=100)
    offset = serializers.IntegerField(min_value=0, default=0)


class JobSerializer(serializers.Serializer):
    id = serializers.CharField()
    # Field.source is popped by the serializer metaclass; this declares the "source" field.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=SOURCE_CHOICES, help_text="tracker: job:{id}; status: job:{id}:status."
    )
    key = serializers.CharField()
    type = serializers.CharField()
    status = serializers.CharField(
        help_text="queued, pending, running, completed, failed, cancelled; unreadable; expired (index only)."
    )
    stored_status = serializers.CharField(
        help_text="The status as stored (JobTracker stores cancelled as failed)."
    )
    progress = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()
    created_at = serializers.CharField(allow_null=True)
    started_at = serializers.CharField(allow_null=True)
    completed_at = serializers.CharField(allow_null=True)
    ttl = serializers.IntegerField(help_text="Seconds; -1 no expiry, -2 the key does not exist.")
    stale = serializers.BooleanField(help_text="Flagged stale (see stale_reasons).")
    stale_reasons = serializers.ListField(child=serializers.CharField(), help_text="Why the job looks stale.")
    problem = serializers.CharField(help_text="Why the stored value is not a readable job ('' when it is).")


class JobListSerializer(serializers.Serializer):
    jobs = JobSerializer(many=True)
    total = serializers.IntegerField(help_text="Jobs matching the filters.")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="All jobs read, per status.")
    scanned = serializers.IntegerField(help_text="job:* keys the bounded SCAN examined.")
    scan_complete = serializers.BooleanField()


class JobDetailSerializer(serializers.Serializer):
    jobs = serializers.ListField(
        child=serializers.DictField(),
        help_text="The job in each keyspace holding it, with every stored field in data.",
    )


class JobActionSerializer(serializers.Serializer):
    """What every job action takes: which keyspace (when ambiguous) and a nonce against replays."""

    # Field.source is popped by the serializer metaclass; this declares the "source" field.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=SOURCE_CHOICES, required=False, help_text="Only when both keyspaces hold the id."
    )
    nonce = serializers.CharField(required=False, allow_blank=True, max_length=64)


class CancelSerializer(JobActionSerializer):
    expected_status = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text="Refuse with 409 unless the job is still in this status.",
    )


class AbortSerializer(CancelSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="User requested")


class DeleteSerializer(JobActionSerializer):
    expected_fingerprint = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="The job's fingerprint from GET /api/jobs/{job_id}/: refuse with 409 if the key changed.",
    )


class JobDeleteResultSerializer(serializers.Serializer):
    """Its own name: queues.api.DeleteResultSerializer is the DeleteResult schema component."""

    archive_id = serializers.IntegerField(help_text="Restore it with POST /api/jobs/archive/restore/.")
    key = serializers.CharField()
    audit_id = serializers.IntegerField()
    detail = serializers.CharField()


class JobRestoreResultSerializer(serializers.Serializer):
    restored = serializers.ListField(child=serializers.IntegerField(), help_text="Archive ids put back.")
    not_restored = serializers.ListField(
        child=serializers.DictField(),
        help_text="{id, detail}: not an archived job key, or the key exists again (never overwritten).",
    )


class AbortResultSerializer(serializers.Serializer):
    job = JobSerializer()
    channel = serializers.CharField()
    receivers = serializers.IntegerField(
        help_text="Subscribers that received the signal; 0 means nobody listened."
    )
    audit_id = serializers.IntegerField()
    detail = serializers.CharField()


class CancelResultSerializer(serializers.Serializer):
    job = JobSerializer()
    audit_id = serializers.IntegerField()
    detail = serializers.CharField()


JOB_ID = OpenApiParameter("job_id", str, OpenApiParameter.PATH, description="The job id (a uuid in HSI).")


class JobListView(ConsoleAPIView):
    """Jobs of both keyspaces, newest first (a bounded SCAN of job:* and the JobStatusService indexes)."""

    permission_classes = [CanViewConsole]

    @extend_schema(
        operation_id="jobs_list",
        parameters=[JobQuerySerializer],
        responses={200: JobListSerializer, **errors(400)},
    )
    def get(self, request: Request) -> Response:
        body = validated(JobQuerySerializer, request.query_params)
        try:
            query = jobs.Query(
                status=body.get("status", ""),
                type=body.get("type", ""),
                since=moment(body.get("since", ""), "since"),
                until=moment(body.get("until", ""), "until"),
                stale=body["stale"],
            )
        except BadQuery as exc:
            raise Problem(str(exc), code="bad_filter") from None
        client = get_redis()
        taken = jobs.snapshot(client)
        chosen = jobs.select(taken, query)
        page = jobs.page(client, taken, chosen[body["offset"] : body["offset"] + body["limit"]])
        return Response(
            {
                "jobs": [job.as_json() for job in page],
                "total": len(chosen),
                "counts": taken.counts,
                "scanned": taken.scanned,
                "scan_complete": taken.scan_complete,
            }
        )


class JobDetailView(ConsoleAPIView):
    """One job as each keyspace holds it, with every stored field (``data``) and its index entries."""

    permission_classes = [CanViewConsole]

    @extend_schema(parameters=[JOB_ID], responses={200: JobDetailSerializer, **errors(404)})
    def get(self, request: Request, job_id: str) -> Response:
        found = jobs.find(get_redis(), job_id)
        if not found:
            raise Problem(
                f"There is no job {job_id[:80]!r} in either keyspace.", code="unknown_job", status=404
            )
        return Response(
            {
                "jobs": [
                    {
                        **job.as_json(),
                        "data": jobs.strict(job.data),
                        "indexes": jobs.strict(job.indexes),
                        "fingerprint": delete_token(job),
                    }
                    for job in found
                ]
            }
        )


def acted_on(
    client: redis.Redis, job_id: str, body: dict[str, Any], find: Callable[[redis.Redis, str, str], jobs.Job]
) -> jobs.Job:
    """The job an action names (404 unknown, 409 ambiguous), once per nonce (409 on a replay)."""
    try:
        job = find(client, job_id, body.get("source", ""))
    except jobs.JobMissing as exc:
        raise Problem(str(exc), code="unknown_job", status=404) from None
    except jobs.JobConflict as exc:
        raise Problem(str(exc), code="ambiguous_job", status=409) from None
    if not actions.first_submission(client, body.get("nonce", "")):
        raise Problem(
            "This action was already submitted (same nonce), so it was not done again.",
            code="duplicate_submission",
            status=409,
        )
    return job


class JobActionView(ConsoleAPIView):
    verb: ClassVar[str] = "abort"
    serializer: ClassVar[type[serializers.Serializer]] = AbortSerializer

    def get_permissions(self) -> list[BasePermission]:
        return [requires("cancel_jobs")()]

    def post(self, request: Request, job_id: str) -> Response:
        body = validated(self.serializer, request.data)
        client = get_redis()
        job = acted_on(client, job_id, body, jobs.pick)
        try:
            return Response(self.act(client, job, body, django_request(request)))
        except jobs.JobConflict as exc:
            raise Problem(str(exc), code="status_changed", status=409) from None
        except jobs.JobMissing as exc:
            raise Problem(str(exc), code="unknown_job", status=404) from None

    def act(self, client: Any, job: jobs.Job, body: dict[str, Any], http: Any) -> dict[str, Any]:
        raise NotImplementedError


class JobAbortView(JobActionView):
    """Abort a running job as HSI does: PUBLISH job:{id}:control {"action": "abort", "reason": ...}.

    Answers how many subscribers received it (0: no worker listened). 409 unless the job is running (or
    not ``expected_status`` any more). Needs the cancel_jobs permission.
    """

    verb = "abort"
    serializer = AbortSerializer

    @extend_schema(
        parameters=[JOB_ID],
        request=AbortSerializer,
        responses={200: AbortResultSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)

    def act(self, client: Any, job: jobs.Job, body: dict[str, Any], http: Any) -> dict[str, Any]:
        receivers, audit_id = jobs.abort(
            client, job, body.get("reason", ""), expected=body.get("expected_status", ""), request=http
        )
        fresh = jobs.pick(client, job.id, job.source)
        return {
            "job": fresh.as_json(),
            "channel": keys.job_control_channel(job.id),
            "receivers": receivers,
            "audit_id": audit_id,
            "detail": abort_sentence(job, receivers),
        }


class JobCancelView(JobActionView):
    """Cancel a pending (or queued) job the way its keyspace encodes it, atomically (409 if it moved on).

    JobTracker: status failed, error "Cancelled by user"; JobStatusService: status cancelled. Needs the
    cancel_jobs permission.
    """

    verb = "cancel"
    serializer = CancelSerializer

    @extend_schema(
        parameters=[JOB_ID],
        request=CancelSerializer,
        responses={200: CancelResultSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)

    def act(self, client: Any, job: jobs.Job, body: dict[str, Any], http: Any) -> dict[str, Any]:
        audit_id = jobs.cancel(client, job, expected=body.get("expected_status", ""), request=http)
        fresh = jobs.pick(client, job.id, job.source)
        return {"job": fresh.as_json(), "audit_id": audit_id, "detail": cancel_sentence(job)}


class JobDeleteView(ConsoleAPIView):
    """Delete one stale job key (or the index entries of an expired job), archived first, as the page does.

    409 unless the job is stale (or its key changed since ``expected_fingerprint``). The archive entry can
    be put back with POST /api/jobs/archive/restore/. Needs the delete_items permission; audited.
    """

    def get_permissions(self) -> list[BasePermission]:
        return [requires("delete_items")()]

    @extend_schema(
        parameters=[JOB_ID],
        request=DeleteSerializer,
        responses={200: JobDeleteResultSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request, job_id: str) -> Response:
        body = validated(DeleteSerializer, request.data)
        client = get_redis()
        job = acted_on(client, job_id, body, stale_job)
        http = django_request(request)
        try:
            row, audit_id = jobs_archive.delete_stale(
                client,
                job,
                expected=body.get("expected_fingerprint", ""),
                username=request.user.get_username(),
                request=http,
            )
        except jobs.JobConflict as exc:
            raise Problem(str(exc), code="not_stale", status=409) from None
        except jobs.JobMissing as exc:
            raise Problem(str(exc), code="unknown_job", status=404) from None
        detail = f"Deleted {row.key}; it is kept as archive entry #{row.pk}."
        return Response({"archive_id": row.pk, "key": row.key, "audit_id": audit_id, "detail": detail})


class JobRestoreView(ConsoleAPIView):
    """Put archived job keys back (each only if its key is absent: HSI's newer value is never overwritten).

    Ids that are not archived job keys (or were restored already) are listed in ``not_restored`` with a
    sentence. Needs the delete_items permission; each restore is audited.
    """

    def get_permissions(self) -> list[BasePermission]:
        return [requires("delete_items")()]

    @extend_schema(
        operation_id="jobs_archive_restore",
        request=RestoreSerializer,
        responses={200: JobRestoreResultSerializer, **errors(400)},
    )
    def post(self, request: Request) -> Response:
        body = validated(RestoreSerializer, request.data)
        if body.get("to_source"):
            raise Problem(
                "Job keys are restored to their own key; to_source is for DLQ entries.", code="bad_request"
            )
        client, http = get_redis(), django_request(request)
        restored: list[int] = []
        refused: list[dict[str, Any]] = []
        for pk in dict.fromkeys(body["ids"]):
            try:
                done = jobs_archive.restore(client, pk, username=request.user.get_username(), request=http)
            except (jobs.JobMissing, jobs.JobConflict) as exc:
                refused.append({"id": pk, "detail": str(exc)})
                continue
            if done:
                restored.append(pk)
            else:
                refused.append(
                    {
                        "id": pk,
                        "detail": f"Archive entry #{pk}: the key exists again, so it was not overwritten.",
                    }
                )
        return Response({"restored": restored, "not_restored": refused})


urlpatterns: list[URLPattern] = [
    path("", JobListView.as_view(), name="api-jobs"),
    path("archive/restore/", JobRestoreView.as_view(), name="api-jobs-archive-restore"),
    path("<str:job_id>/", JobDetailView.as_view(), name="api-job"),
    path("<str:job_id>/abort/", JobAbortView.as_view(), name="api-job-abort"),
    path("<str:job_id>/cancel/", JobCancelView.as_view(), name="api-job-cancel"),
    path("<str:job_id>/delete/", JobDeleteView.as_view(), name="api-job-delete"),
]
