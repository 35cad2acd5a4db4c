"""JSON API for queues, DLQs and the archive: thin DRF views over ``queues.actions`` and friends.

Every error answers ``{"error": <code>, "detail": <sentence>}``. Views only hand ``get_redis()`` to
the service functions; they never talk to Redis themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

import redis
from django.db.models import QuerySet
from django.http import HttpRequest
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from console.models import ArchivedItem
from console.permissions import CanViewConsole
from console.redis import get_redis
from console.roles import ROLES, perm
from queues import actions, archive, breakdown, dlq, inventory, keys, streams
from queues.conf import conf
from queues.forms import FILTER_NAMES, MAX_ARCHIVE_ID, RUN_ID, new_nonce
from queues.inventory import QUEUE_FAMILIES, list_queues
from queues.server_report import Change, changes

PERMISSION = {"retry": "retry_items", "delete": "delete_items"}
PAST = {"retry": "retried", "delete": "deleted", "restore": "restored"}
MAX_IDS = 1000
ARCHIVE_ROWS = 100
REF = re.compile(r"(?:\d+:)?[0-9a-f]{20}")
DELETION = rf"^{RUN_ID.pattern}$"  # a delete's id (queues.forms.new_nonce)


# --- Errors -------------------------------------------------------------------------------------


class Problem(APIException):
    """An API error with a machine-readable code and a sentence for people."""

    def __init__(self, detail: str, *, code: str = "bad_request", status: int = 400) -> None:
        super().__init__(detail, code)
        self.status_code = status


def _first_error(errors: Any, path: str = "") -> str:
    """The first message of a serializer's nested errors, prefixed with where it is."""
    if isinstance(errors, Mapping) and errors:
        name, inner = next(iter(errors.items()))
        if name == api_settings.NON_FIELD_ERRORS_KEY:
            label = path
        elif isinstance(name, int):
            label = f"{path}[{name}]"
        else:
            label = f"{path}.{name}" if path else str(name)
        return _first_error(inner, label)
    if isinstance(errors, list) and errors:
        return _first_error(errors[0], path)
    text = str(errors)
    return f"{path}: {text}" if path else text


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The validated body or query; a 400 with one sentence when it is malformed."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise Problem(_first_error(serializer.errors))
    return dict(serializer.validated_data)


def _shown(key: str) -> str:
    return repr(key[:200])


def known_key(key: str) -> str:
    """A key of a queue family (work queue, DLQ, stream), else 404."""
    family = keys.classify(key).name
    if family not in QUEUE_FAMILIES:
        raise Problem(
            f"{_shown(key)} is not a queue or dead-letter queue (its key family is {family!r}).",
            code="unknown_key",
            status=404,
        )
    return key


def list_key(key: str) -> str:
    """A queue or DLQ whose entries are a list (streams are paged by id instead)."""
    if is_stream(known_key(key)):
        raise Problem(
            f"{_shown(key)} is a stream: page it with ?after=<entry id> on the items endpoint.",
            code="stream_not_supported",
        )
    return key


def is_stream(key: str) -> bool:
    return inventory.is_stream(keys.classify(key).name)


def dlq_key(key: str, verb: str) -> str:
    """A DLQ the console can retry from or delete from: a list DLQ or a stream DLQ."""
    return any_dlq_key(key, f"only DLQ entries can be {PAST[verb]}")


def any_dlq_key(key: str, only: str) -> str:
    """A list or stream DLQ, else a 400 that ends with ``only`` (what only a DLQ's entries do)."""
    family = keys.classify(known_key(key)).name
    if family not in inventory.LIST_DLQ_FAMILIES | {"stream_dlq"}:
        raise Problem(f"{_shown(key)} is a work queue, not a dead-letter queue: {only}.", code="not_a_dlq")
    return key


# --- Permissions and base view ------------------------------------------------------------------


@cache
def requires(codename: str) -> type[BasePermission]:
    """A permission class: the console view permission plus ``console.<codename>``."""
    roles = " or ".join(name for name, granted in ROLES.items() if perm(codename) in granted)

    class Requires(CanViewConsole):
        message = f"You need the {codename!r} permission ({roles} role) to do this."

        def has_permission(self, request: Request, view: Any) -> bool:
            return super().has_permission(request, view) and request.user.has_perm(perm(codename))

    Requires.__name__ = Requires.__qualname__ = f"Requires_{codename}"
    return Requires


class AsciiJSONRenderer(JSONRenderer):
    """JSON with every non-ASCII character escaped: lone surrogates from hostile entries stay valid."""

    ensure_ascii = True


class ErrorShape(APIView):
    def handle_exception(self, exc: Exception) -> Response:
        """DRF's errors (401, 403, 404, parse errors) get the same ``error`` code as ours."""
        response = super().handle_exception(exc)
        data = response.data
        if isinstance(data, dict) and "error" not in data and "detail" in data:
            response.data = {"error": getattr(data["detail"], "code", "error"), "detail": str(data["detail"])}
        return response


class ConsoleAPIView(ErrorShape):
    renderer_classes = [AsciiJSONRenderer]


def django_request(request: Request) -> Any:
    """The HttpRequest the services audit (user and address)."""
    return request._request


# --- Serializers (validation and the OpenAPI schema) --------------------------------------------


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A machine-readable code, e.g. duplicate_submission.")
    detail = serializers.CharField(help_text="A sentence that says what is wrong.")


class ConsumerSerializer(serializers.Serializer):
    name = serializers.CharField()
    pending = serializers.IntegerField(help_text="Entries delivered to it and not acknowledged.")
    idle_seconds = serializers.FloatField(help_text="Since it last tried to read or claim.")
    inactive_seconds = serializers.FloatField(
        allow_null=True, help_text="Since it last got an entry (Redis 7.2 and later; else null)."
    )


class StreamGroupSerializer(serializers.Serializer):
    """A consumer group: XINFO GROUPS' own fields (hyphenated, as Redis names them), then the console's."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "name": serializers.CharField(),
            "consumers": serializers.IntegerField(),
            "pending": serializers.IntegerField(help_text="Read, not acknowledged."),
            "last-delivered-id": serializers.CharField(),
            "entries-read": serializers.IntegerField(
                required=False, allow_null=True, help_text="Reported by Redis 7 and later."
            ),
            "lag": serializers.IntegerField(
                required=False,
                allow_null=True,
                help_text="Entries not read yet (Redis 7 and later); null when Redis cannot tell.",
            ),
            "consumer_details": ConsumerSerializer(many=True),
            "idle_consumers": serializers.BooleanField(
                help_text="Every consumer idle longer than CONSUMER_IDLE_SECONDS."
            ),
            "behind": serializers.IntegerField(help_text="pending + lag: entries not processed yet."),
            "trimmed_unread": serializers.IntegerField(
                help_text="Entries HSI's XADD MAXLEN trimmed before this group read them."
            ),
            "pending_trimmed": serializers.BooleanField(
                help_text="Its oldest pending entry was trimmed before it was acknowledged."
            ),
            "level": serializers.ChoiceField(
                choices=["ok", "filling", "full"],
                help_text="filling: 80% of MAXLEN behind; full: trimming reached, or is next to reach, "
                "an entry it has not processed.",
            ),
        }


class ChangeSerializer(serializers.Serializer):
    entries = serializers.IntegerField(help_text="Length now minus length then: positive when it grew.")
    seconds = serializers.IntegerField(help_text="How long ago then was (at least 60, about 900).")


class QueueInfoSerializer(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.ChoiceField(choices=["queue", "dlq"])
    type = serializers.ChoiceField(choices=["list", "stream"])
    length = serializers.IntegerField()
    # Field.source is popped by the serializer metaclass; this declares the "source" field.
    source = serializers.CharField(  # type: ignore[assignment]
        allow_null=True, help_text="The queue a DLQ's entries came from."
    )
    max_size = serializers.IntegerField(
        allow_null=True,
        help_text="QUEUE_MAX_SIZE, where HSI stops writing a work queue or retry DLQ (a stream: its MAXLEN); "
        "null for an overflow DLQ, which HSI appends to without a limit.",
    )
    fill_ratio = serializers.FloatField(allow_null=True, help_text="length / max_size, or null.")
    level = serializers.ChoiceField(
        choices=["ok", "filling", "full"],
        help_text="For a work queue or retry DLQ: filling from 80% of max_size, full at it (HSI then "
        "rejects or evicts new items; a full retry DLQ makes HSI drop failed jobs). For a stream, which "
        "HSI trims at MAXLEN: filling when a group is 80% of max_size behind, full when trimming reached "
        "or is about to reach entries a group has not processed (a stream DLQ: also by its length).",
    )
    alert = serializers.CharField(allow_null=True, help_text="What level means for HSI and what to do.")
    oldest_age_seconds = serializers.FloatField(allow_null=True)
    stored_type = serializers.CharField(
        allow_null=True,
        help_text='What the key holds when it is not the list or stream its name says ("string", '
        '"hash"...; HSI never writes one there): its length reads 0 and its pages answer 409. Else null.',
    )
    groups = StreamGroupSerializer(many=True, help_text="Consumer groups of a stream (empty for a list).")
    change = ChangeSerializer(
        allow_null=True,
        help_text="How much the length changed since the relay's first sample of the last 15 minutes; "
        "null without one (the relay not running) or for a queue that sample does not hold.",
    )


class QueueListSerializer(serializers.Serializer):
    queues = QueueInfoSerializer(many=True)


class ItemsQuerySerializer(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    order = serializers.ChoiceField(choices=["oldest", "newest"], default="oldest")
    after = serializers.RegexField(
        rf"^(-|{streams.ENTRY_ID.pattern})$",
        default="-",
        help_text="Streams only: continue after this entry id.",
    )


class ItemSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Fingerprint of the entry's exact bytes.")
    index = serializers.IntegerField(help_text="Position in the list when it was read.")
    size = serializers.IntegerField(help_text="Stored size in bytes.")
    encoding = serializers.ListField(child=serializers.CharField(), help_text="e.g. ['zstd', 'json'].")
    payload = serializers.JSONField(allow_null=True, help_text="The decoded JSON, or null when unreadable.")
    error = serializers.CharField(allow_null=True, help_text="Why the entry is not a readable DLQ entry.")


class StreamItemSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The stream entry id ('<ms>-<seq>').")
    # The metaclass pops declared fields, so this declares the "fields" field, not Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="The entry's fields."
    )
    cut = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Values over 64 KiB: their whole size in bytes, by field name; the field holds only "
        "their first 65,536 bytes.",
    )


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="QueueItem",
        serializers=[ItemSerializer, StreamItemSerializer],
        resource_type_field_name=None,
        many=True,
    )
)
class ItemsField(serializers.ListField):
    """A list queue's items (decoded entries) or a stream's entries (id and fields)."""


class ItemsPageSerializer(serializers.Serializer):
    key = serializers.CharField()
    total = serializers.IntegerField()
    offset = serializers.IntegerField(required=False, help_text="Lists only.")
    limit = serializers.IntegerField()
    items = ItemsField(child=serializers.DictField())
    next_after = serializers.CharField(
        required=False, allow_null=True, help_text="Streams only: send as ?after= for the next page."
    )


class FilterSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="Error text or type contains this, in any case (a stream DLQ: its dlq_reason).",
    )
    type = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The error type is exactly this (a stream DLQ has none: nothing matches).",
    )
    error = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The error's first line (cut at 120 characters) is exactly this "
        "(a stream DLQ: its dlq_reason's).",
    )
    camera = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    since = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, help_text="ISO time, e.g. 2026-02-11T22:04."
    )
    until = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="ISO time; to the end of the minute (or second, hour, day) it names, e.g. "
        "2026-02-11T22:04 takes 22:04:59.7 too; with a fraction of a second, to that instant.",
    )


class ActionSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=MAX_IDS,
        help_text=(
            "Entry refs from the items endpoint: '<index>:<id>' or a bare '<id>'; "
            "for a stream DLQ, entry ids ('<ms>-<seq>')."
        ),
    )
    all = serializers.BooleanField(required=False, default=False, help_text="Act on every matching entry.")
    filter = FilterSerializer(required=False, help_text="Only with all: true.")
    start = serializers.IntegerField(
        min_value=0, default=0, help_text="Only with all: true: the position a previous answer returned."
    )
    unexamined = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="List DLQs, with all: true and start: the previous answer's remaining. The step then "
        "examines exactly the run's own entries, even if someone deleted entries the run left at the "
        "tail or HSI appended new failures.",
    )
    end = serializers.BooleanField(
        required=False,
        default=False,
        help_text="List DLQs, with all: true, start and unexamined: end the run instead of going on. The "
        "steps act on nothing and move the entries not examined yet behind those the run left at the "
        "tail, so the DLQ is back in its old order; repeat while remaining is above 0.",
    )
    after = serializers.RegexField(
        rf"^(-|{streams.ENTRY_ID.pattern})$",
        required=False,
        help_text="Stream DLQs, only with all: true: the position (an entry id) a previous answer returned.",
    )
    nonce = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Unique per request; a repeat gets 409."
    )
    deletion = serializers.RegexField(
        DELETION,
        required=False,
        help_text="Delete with all: true: the deletion of the first answer, sent with every later request "
        "so that the archive keeps the whole delete as one action (one undo).",
    )

    def validate_ids(self, ids: list[str]) -> list[str]:
        for ref in ids:
            if not (REF.fullmatch(ref) or streams.ENTRY_ID.fullmatch(ref)):
                raise serializers.ValidationError(
                    f"{ref[:40]!r} is not an entry id: send '<index>:<id>' or '<id>' from the items endpoint."
                )
        return list(dict.fromkeys(ids))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("ids")) == bool(attrs["all"]):
            raise serializers.ValidationError("Send either ids or all: true (not both, not neither).")
        if attrs.get("ids") and (
            "filter" in attrs or attrs["start"] or "unexamined" in attrs or attrs["end"]
        ):
            raise serializers.ValidationError("filter, start, unexamined and end only apply with all: true.")
        if attrs.get("ids") and "after" in attrs:
            raise serializers.ValidationError("after only applies with all: true.")
        if "after" in attrs and not (attrs["after"] == "-" or streams.is_entry_id(attrs["after"])):
            raise serializers.ValidationError("after: each part of an entry id must be below 2^64.")
        return attrs


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True})
class PositionField(serializers.Field):
    """Where a bulk action continues: a list's position (int) or a stream's last entry id."""

    def to_representation(self, value: Any) -> Any:
        return value


class ActionResultSerializer(serializers.Serializer):
    skipped = serializers.IntegerField()
    skipped_reasons = serializers.DictField(child=serializers.IntegerField(), help_text="Count per reason.")
    unmatched = serializers.IntegerField(
        help_text="With all and a filter: entries this call examined that did not match, left in place."
    )
    remaining = serializers.IntegerField(help_text="With all: entries still to look at; else 0.")
    put_back = serializers.IntegerField(
        help_text="With end: entries this call moved, unexamined, behind those the run left; else 0."
    )
    position = PositionField(
        help_text="With all: send it back as start (a list DLQ) or as after (a stream DLQ: an entry id)."
    )
    audit_id = serializers.IntegerField()
    detail = serializers.CharField(help_text="The outcome as a sentence.")


class RetryResultSerializer(ActionResultSerializer):
    retried = serializers.IntegerField()
    target = serializers.CharField(help_text="The source queue the jobs were pushed to.")
    full = serializers.BooleanField(help_text="The target reached QUEUE_MAX_SIZE: stop and try later.")


class DeleteResultSerializer(ActionResultSerializer):
    deleted = serializers.IntegerField()
    archived = serializers.IntegerField(help_text="Deleted entries are archived first and can be restored.")
    deletion = serializers.CharField(
        help_text="This delete's id in the archive: restore-all with it restores exactly what it archived."
    )


class RestoreSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ARCHIVE_ID),
        min_length=1,
        max_length=MAX_IDS,
        help_text="Archive ids.",
    )
    to_source = serializers.BooleanField(
        default=False, help_text="Push the jobs to their source queue instead of back to the DLQ."
    )


class RestoreResultSerializer(serializers.Serializer):
    restored = serializers.IntegerField()
    not_restored = serializers.IntegerField()


class RestoreAllSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=1024, help_text="The DLQ whose archived entries go back.")
    to_source = serializers.BooleanField(
        default=False, help_text="Push the jobs to the DLQ's source queue instead of back to the DLQ."
    )
    after = serializers.IntegerField(
        min_value=0, default=0, help_text="Continue after this archive id (the previous answer's after)."
    )
    deletion = serializers.RegexField(
        DELETION, required=False, help_text="Only what this delete archived (its undo): a delete's deletion."
    )
    filter = FilterSerializer(required=False, help_text="Only archived entries matching it (a DLQ's filter).")


class RestoreAllResultSerializer(serializers.Serializer):
    restored = serializers.IntegerField()
    not_matching = serializers.IntegerField(help_text="With filter: rows looked at that stay archived.")
    not_restored = serializers.IntegerField(
        help_text="Rows with no job to rebuild, or restored by someone else."
    )
    target = serializers.CharField()
    full = serializers.BooleanField(help_text="The target reached QUEUE_MAX_SIZE; the rest stays archived.")
    after = serializers.IntegerField(help_text="Send back as after to continue.")
    remaining = serializers.IntegerField(help_text="Archived rows of the key after after; 0 when done.")
    audit_id = serializers.IntegerField()


class ArchiveQuerySerializer(serializers.Serializer):
    key = serializers.CharField(required=False, help_text="Only rows deleted from this DLQ.")
    deletion = serializers.RegexField(DELETION, required=False, help_text="Only rows of this delete.")
    before = serializers.IntegerField(
        min_value=1, max_value=MAX_ARCHIVE_ID, required=False, help_text="Only rows older than this id."
    )
    q = serializers.CharField(required=False, help_text="A DLQ filter: error text or type (stream: reason).")
    type = serializers.CharField(required=False, help_text="A DLQ filter: the error type, exactly.")
    error = serializers.CharField(
        required=False, help_text="A DLQ filter: the error's first line, exactly (stream: the reason's)."
    )
    camera = serializers.CharField(required=False, help_text="A DLQ filter: the job's camera_id.")
    since = serializers.CharField(required=False, help_text="A DLQ filter: failed at or after (ISO time).")
    until = serializers.CharField(
        required=False, help_text="A DLQ filter: failed by the end of the minute (or second, day) it names."
    )


class ArchivedRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    fingerprint = serializers.CharField()
    size = serializers.IntegerField()
    state = serializers.ChoiceField(choices=ArchivedItem.State.choices)
    deleted_at = serializers.DateTimeField()
    deleted_by = serializers.CharField()
    restored_at = serializers.DateTimeField(allow_null=True)
    restored_by = serializers.CharField()
    restored_to = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=ArchivedItem.Kind.choices, help_text="list: raw bytes kept; stream: id and fields kept."
    )
    entry_id = serializers.CharField(help_text="A stream entry's id when it was deleted ('' for lists).")
    deletion = serializers.CharField(help_text="The delete that archived the row.")


class ArchiveListSerializer(serializers.Serializer):
    items = ArchivedRowSerializer(many=True)
    next_before = serializers.IntegerField(
        allow_null=True, help_text="Send as before for the next (older) rows; null when there are none."
    )
    searched = serializers.IntegerField(
        allow_null=True, help_text="With a DLQ filter: rows examined (at most 5,000 a request); else null."
    )


def errors(*statuses: int) -> dict[int, type[serializers.Serializer]]:
    """The error answers, each ``{"error", "detail"}``: 409 ``wrong_type`` when a key the request
    reads holds another type than HSI writes there, 503 when Redis does not answer."""
    return dict.fromkeys((401, 403, *statuses, 409, 503), ErrorSerializer)


KEY = OpenApiParameter(
    "key", str, OpenApiParameter.PATH, description="The Redis key, URL-encoded (dlq%3Adetection_queue)."
)


# --- Views --------------------------------------------------------------------------------------


def json_item(entry: dlq.Entry) -> dict[str, Any]:
    """``dlq.as_json`` made strictly JSON: NaN and Infinity become the strings "NaN", "Infinity"."""
    item = dlq.as_json(entry)
    try:
        json.dumps(item["payload"], allow_nan=False)
    except ValueError:
        item["payload"] = json.loads(json.dumps(item["payload"]), parse_constant=str)
    return item


class QueueListView(ConsoleAPIView):
    """Every queue and DLQ (both key layouts, lists and streams) with depth, fill and oldest age."""

    @extend_schema(responses={200: QueueListSerializer, **errors()})
    def get(self, request: Request) -> Response:
        client = get_redis()
        infos = list_queues(client)
        trend = changes(client, {info.key: info.length for info in infos})
        return Response(
            {"queues": [{**info.as_dict(), "change": _change(trend.get(info.key))} for info in infos]}
        )


def _change(change: Change | None) -> dict[str, int] | None:
    return change.as_dict() if change else None


class FacetValueSerializer(serializers.Serializer):
    value = serializers.CharField(
        help_text="An error type, an error's first line (120 characters at most) or a camera."
    )
    count = serializers.IntegerField(help_text="Entries examined with this value.")
    filter = FilterSerializer(
        allow_null=True,
        help_text="The filter (type, error or camera) that picks exactly these entries: send it with "
        "all: true to retry or delete them. Null when no filter can (a value longer than the filter "
        "takes, e.g. a camera id over 64 characters, or one with spaces around it).",
    )


class FacetSerializer(serializers.Serializer):
    values = FacetValueSerializer(many=True, help_text="The 10 most common values, most common first.")
    others = serializers.IntegerField(help_text="Entries with a value not listed.")
    distinct = serializers.IntegerField()
    missing = serializers.IntegerField(help_text="Entries examined without this field.")


class BucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    count = serializers.IntegerField()
    filter = FilterSerializer(help_text="since and until (UTC, whole minutes) that pick these entries.")


class TimelineSerializer(serializers.Serializer):
    bucket_seconds = serializers.IntegerField(
        allow_null=True, help_text="The shortest of 1 min … 1 week that covers the times in 24 buckets."
    )
    buckets = BucketSerializer(many=True, help_text="Oldest first, up to the newest failure; empty ones too.")
    earlier = serializers.IntegerField(help_text="Entries that failed before the first bucket.")


class BreakdownQuerySerializer(FilterSerializer):
    older = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="A previous answer's `older`: break down the entries before those it read.",
    )


class BreakdownSerializer(serializers.Serializer):
    key = serializers.CharField()
    total = serializers.IntegerField(help_text="Entries in the DLQ.")
    examined = serializers.IntegerField(help_text="The newest entries read: at most 5,000 per request.")
    older = serializers.CharField(
        allow_null=True,
        help_text="Send as ?older= for the entries before these (null: there are none). A list's is a "
        "count of newest entries to pass over, a stream's an entry id.",
    )
    filter = FilterSerializer(help_text="The filter asked for: only the entries it picks are counted.")
    matched = serializers.IntegerField(
        help_text="Of the entries examined, those the filter picks (all of them without a filter)."
    )
    complete = serializers.BooleanField(help_text="Every entry was examined.")
    unreadable = serializers.IntegerField(
        help_text="Entries that are not a JSON object (not JSON, binary, a broken Z: value)."
    )
    first_failed = serializers.DateTimeField(allow_null=True)
    last_failed = serializers.DateTimeField(allow_null=True)
    error_type = FacetSerializer(
        help_text="Always empty for a stream DLQ, whose entries carry only a reason."
    )
    error = FacetSerializer(help_text="A list entry's error, a stream entry's dlq_reason (first line).")
    camera = FacetSerializer()
    timeline = TimelineSerializer(help_text="When they failed: entries per stretch of time.")


class BreakdownView(ConsoleAPIView):
    """Why a DLQ's newest entries failed: their error types, errors and cameras, counted, and when.

    Reads at most 5,000 entries, newest first (what is failing now; `older` goes further back); with
    a DLQ filter (`q`, `type`, `error`, `camera`, `since`, `until`) counts only those it picks, to
    drill down. Each value's
    `filter` picks those entries: the `filter` of a retry or delete with `all`, or the item
    browser's query."""

    @extend_schema(
        parameters=[KEY, BreakdownQuerySerializer], responses={200: BreakdownSerializer, **errors(400, 404)}
    )
    def get(self, request: Request, key: str) -> Response:
        any_dlq_key(key, "only DLQ entries say why they failed")
        query = validated(BreakdownQuerySerializer, request.query_params)
        older = query.pop("older", None) or ""
        if problem := breakdown.bad_older(older, is_stream(key)):
            raise Problem(problem, code="bad_older")
        read = breakdown.of_stream if is_stream(key) else breakdown.of_list
        return Response(read(get_redis(), key, filters_of({"filter": query}), older).as_json())


class QueueItemsView(ConsoleAPIView):
    """One page of a queue's or DLQ's entries, decoded; unreadable entries have payload null and an error."""

    @extend_schema(
        parameters=[KEY, ItemsQuerySerializer], responses={200: ItemsPageSerializer, **errors(400, 404)}
    )
    def get(self, request: Request, key: str) -> Response:
        query = validated(ItemsQuerySerializer, request.query_params)
        if is_stream(known_key(key)):
            stream = streams.page(
                get_redis(),
                key,
                after=query["after"],
                limit=query["limit"],
                newest_first=query["order"] == "newest",
            )
            items = [streams.as_json(entry) for entry in stream.entries]
            return Response(
                {
                    "key": key,
                    "total": stream.total,
                    "limit": query["limit"],
                    "items": items,
                    "next_after": stream.next_id,
                }
            )
        page = dlq.page(
            get_redis(),
            key,
            offset=query["offset"],
            limit=query["limit"],
            newest_first=query["order"] == "newest",
        )
        items = [json_item(entry) for entry in page.entries]
        return Response(
            {"key": key, "total": page.total, "offset": page.offset, "limit": page.limit, "items": items}
        )


def describe(verb: str, outcome: dlq.Outcome) -> str:
    """The outcome as a sentence: "Retried 3 of dlq:x to x." or "Deleted 3 (archived) of dlq:x."."""
    return outcome.summary("Retried" if verb == "retry" else "Deleted")


def action_result(
    verb: str, outcome: dlq.Outcome, position: int | str | None, audit_id: int, deletion: str = ""
) -> dict[str, Any]:
    common = {
        "skipped": outcome.skipped_count,
        "skipped_reasons": dict(outcome.skipped),
        "unmatched": outcome.unmatched,
        "remaining": outcome.remaining or 0,
        "put_back": outcome.put_back,
        "position": position,
        "audit_id": audit_id,
        "detail": describe(verb, outcome),
    }
    if verb == "retry":
        return {"retried": outcome.done, "target": outcome.target, "full": outcome.full, **common}
    return {"deleted": outcome.done, "archived": outcome.done, "deletion": deletion, **common}


def filters_of(body: Mapping[str, Any]) -> actions.Filters:
    raw = {name: value for name, value in (body.get("filter") or {}).items() if value is not None}
    try:
        return actions.Filters.from_query(raw)
    except actions.BadFilter as exc:
        raise Problem(str(exc), code="bad_filter") from None


class DlqActionView(ConsoleAPIView):
    """Retry or delete DLQ entries; ``verb`` picks which (and the permission it needs)."""

    verb: ClassVar[str] = "retry"

    def get_permissions(self) -> list[BasePermission]:
        return [requires(PERMISSION[self.verb])()]

    def post(self, request: Request, key: str) -> Response:
        key = dlq_key(key, self.verb)
        body = validated(ActionSerializer, request.data)
        stream_ids = self.stream_ids(key, body)
        filters = filters_of(body)
        client = get_redis()
        if not actions.first_submission(client, body.get("nonce", "")):
            raise Problem(
                "This action was already submitted (same nonce), so it was not done again: "
                "reload to see the current state.",
                code="duplicate_submission",
                status=409,
            )
        http = django_request(request)
        deletion = body.get("deletion") or new_nonce()
        if stream_ids is not None:
            return self.stream_action(client, key, body, stream_ids, http, filters, deletion)
        if body["all"]:
            outcome, position, audit_id = actions.act_on_matching(
                client,
                key,
                filters,
                verb=self.verb,
                request=http,
                start=body["start"],
                budget_seconds=conf("BULK_CHUNK_SECONDS"),
                deletion=deletion,
                unexamined=body.get("unexamined"),
                end=body["end"],
            )
            return Response(action_result(self.verb, outcome, position, audit_id, deletion))
        outcome, audit_id = actions.act_on_selected(
            client, key, body["ids"], verb=self.verb, request=http, deletion=deletion
        )
        return Response(action_result(self.verb, outcome, None, audit_id, deletion))

    @staticmethod
    def stream_ids(key: str, body: dict[str, Any]) -> list[str] | None:
        """A stream DLQ's entry ids from the body (``[]`` with all: true); None for a list DLQ."""
        if not is_stream(key):
            if "after" in body:
                raise Problem("after applies to stream DLQs only; a list DLQ continues from start.")
            return None
        if body["end"]:
            raise Problem(
                "end applies to list DLQs only: a stream DLQ's run leaves its entries where they are, "
                "so there is no order to put back; just stop sending requests."
            )
        if body["start"]:
            raise Problem(
                "A stream DLQ's all: true continues from after (the entry id of the previous "
                "answer's position), not start."
            )
        bad = [ref for ref in body.get("ids", []) if not streams.is_entry_id(ref)]
        if bad:
            raise Problem(
                f"{bad[0][:40]!r} is not a stream entry id: a stream DLQ's entries are named "
                "'<ms>-<seq>' (the ids of the items endpoint)."
            )
        return list(body.get("ids", []))

    def stream_action(
        self,
        client: redis.Redis,
        key: str,
        body: dict[str, Any],
        ids: list[str],
        http: HttpRequest,
        filters: actions.Filters,
        deletion: str,
    ) -> Response:
        if body["all"]:
            after = body.get("after", "-")
            outcome, position, _, audit_id = actions.act_on_stream(
                client,
                key,
                verb=self.verb,
                request=http,
                after=after,
                budget_seconds=conf("BULK_CHUNK_SECONDS"),
                filters=filters,
                deletion=deletion,
            )
            return Response(action_result(self.verb, outcome, position, audit_id, deletion))
        if self.verb == "retry":
            outcome, audit_id = actions.retry_stream(client, key, ids, request=http)
        else:
            outcome, audit_id = actions.delete_stream(client, key, ids, request=http, deletion=deletion)
        return Response(action_result(self.verb, outcome, None, audit_id, deletion))


ACTION_NOTES = """
Body: either `{"ids": [...]}` with refs from the items endpoint (`"<index>:<id>"`, or a bare `"<id>"`;
at most 1000), or `{"all": true, "filter": {"q", "type", "error", "camera", "since", "until"},
"start": 0}` for every matching entry (`q`: error text or type contains it; `type` and `error`: the
error type and the error's first line are exactly it, as the breakdown's values give them).
Optional `"nonce"`: a value unique to this request; sending it again answers 409
`duplicate_submission` and does nothing.

With `all`, one request handles one time-boxed chunk (`HSI_BULK_CHUNK_SECONDS`, 3 seconds by
default). While `remaining` is above 0 (and, for retry, `full` is false), send the same body again
with `"start"` set to the `position` of the previous answer and `"unexamined"` to its `remaining`
(and a fresh nonce, if you use nonces); for a delete, also send the first answer's `deletion`, so
that the archive holds the whole delete as one action and `/api/archive/restore-all/` with that
`deletion` undoes it. Every request writes an audit entry (`audit_id`). A list DLQ's `position`
counts the entries looked at and left in place (with a filter: moved, in order, to the DLQ's tail;
see the README); without `unexamined`, someone deleting some of those meanwhile makes the run end
that many entries early, and HSI appending new failures makes it examine as many of its own
entries twice. To end a list DLQ's run before it is done, send the same body with
`"end": true` (with `start` and `unexamined` as above) until `remaining` is 0: those steps act on
nothing and move the entries not examined yet behind the ones the run left at the tail
(`put_back`), so the DLQ is back in its old order.

Stream DLQs (`<stream>:dlq`): `ids` are entry ids (`"<ms>-<seq>"`); `{"all": true}` takes every entry
(or, with `filter`, those matching it: `q` is looked for in `dlq_reason`, `error` is its first line,
`camera` is `camera_id`, and
`since`/`until` compare `dlq_timestamp`), and its `position` is an entry id: send it back as `"after"`.
"""


@extend_schema_view(
    post=extend_schema(
        parameters=[KEY],
        request=ActionSerializer,
        responses={200: RetryResultSerializer, **errors(400, 404, 409)},
    )
)
class RetryView(DlqActionView):
    __doc__ = (
        "Retry DLQ entries: push each job back to its source queue and remove the entry, atomically.\n"
        "Entries that are not retryable stay, counted in `skipped_reasons`; when the source queue reaches\n"
        "QUEUE_MAX_SIZE the request stops with `full: true`. Needs the retry_items permission.\n"
        + ACTION_NOTES
    )
    verb = "retry"


@extend_schema_view(
    post=extend_schema(
        parameters=[KEY],
        request=ActionSerializer,
        responses={200: DeleteResultSerializer, **errors(400, 404, 409)},
    )
)
class DeleteView(DlqActionView):
    __doc__ = (
        "Delete DLQ entries: each is archived (byte for byte) before it leaves Redis, and can be put back\n"
        "with /api/archive/restore/. Needs the delete_items permission.\n" + ACTION_NOTES
    )
    verb = "delete"


class RestoreView(ConsoleAPIView):
    """Put archived entries back: to their DLQ, or (``to_source``) their job to the source queue.

    Rows that are not archived any more (already restored) or whose job cannot be read are counted in
    ``not_restored``; with ``to_source``, a full source queue also leaves rows archived. Stream entries
    are added again with new ids: all their fields to the DLQ stream, or to the source stream only the
    original ones (without original_message_id, dlq_reason, dlq_timestamp, delivery_count); nothing
    is trimmed. Needs the delete_items permission.
    """

    permission_classes = [requires("delete_items")]

    @extend_schema(request=RestoreSerializer, responses={200: RestoreResultSerializer, **errors(400)})
    def post(self, request: Request) -> Response:
        body = validated(RestoreSerializer, request.data)
        ids = list(dict.fromkeys(body["ids"]))
        result = actions.restore(
            get_redis(), ids, to_source=body["to_source"], request=django_request(request)
        )
        return Response(result)


class RestoreAllView(ConsoleAPIView):
    """Put back every archived entry of one DLQ, oldest first (their order in the DLQ), as a restore
    of their ids would: one time-boxed step per request; repeat with ``after`` until ``remaining`` is
    0 or ``full`` is true. With ``deletion`` (from a delete's answer) only what that delete archived
    goes back: its undo. Needs the delete_items permission."""

    permission_classes = [requires("delete_items")]

    @extend_schema(
        request=RestoreAllSerializer, responses={200: RestoreAllResultSerializer, **errors(400, 404)}
    )
    def post(self, request: Request) -> Response:
        body = validated(RestoreAllSerializer, request.data)
        key = dlq_key(body["key"], "restore")
        run, audit_id = actions.restore_all(
            get_redis(),
            key,
            to_source=body["to_source"],
            request=django_request(request),
            after=body["after"],
            budget_seconds=conf("BULK_CHUNK_SECONDS"),
            deletion=body.get("deletion", ""),
            filters=filters_of(body),
        )
        fields = ("restored", "not_restored", "target", "full", "after", "remaining")
        answer = {name: getattr(run, name) for name in fields} | {"not_matching": run.passed}
        return Response(answer | {"audit_id": audit_id})


class ArchiveListView(ConsoleAPIView):
    """Archived (deleted) entries, newest first, at most 100 a request; without their bytes. With a
    DLQ filter (``q``, ``type``, ``error``, ``camera``, ``since``, ``until``) a request examines at
    most 5,000 rows, as the archive page does; ``next_before`` continues either way."""

    @extend_schema(parameters=[ArchiveQuerySerializer], responses={200: ArchiveListSerializer, **errors(400)})
    def get(self, request: Request) -> Response:
        query = validated(ArchiveQuerySerializer, request.query_params)
        rows: QuerySet[ArchivedItem] = ArchivedItem.objects.order_by("-id")
        if query.get("key"):
            rows = rows.filter(key=query["key"])
        if query.get("deletion"):
            rows = rows.filter(deletion=query["deletion"])
        filters = filters_of({"filter": {name: query.get(name) for name in FILTER_NAMES}})
        searched: int | None = None
        if filters.active:
            found = archive.search(rows, filters.select, before=query.get("before"), limit=ARCHIVE_ROWS)
            items, searched = found.rows, found.examined
            next_before = None if found.complete else found.last
        else:
            older = rows.filter(pk__lt=query["before"]) if query.get("before") else rows
            items = list(older.defer("raw")[: ARCHIVE_ROWS + 1])
            next_before = items[ARCHIVE_ROWS - 1].pk if len(items) > ARCHIVE_ROWS else None
            items = items[:ARCHIVE_ROWS]
        data = ArchivedRowSerializer(items, many=True).data
        return Response({"items": data, "next_before": next_before, "searched": searched})


class SchemaView(ErrorShape, SpectacularAPIView):
    """The OpenAPI 3 schema of this API: JSON by default, YAML with ?format=yaml."""

    permission_classes = [CanViewConsole]
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]
