from __future__ import annotations

from django.conf import settings
from django.db import connection, models
from django.db.models.expressions import RawSQL

from console.roles import PERMISSIONS


class ConsolePermission(models.Model):
    """Holds the console's custom permissions; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = PERMISSIONS

    def __str__(self) -> str:
        return "console permissions"


class AuditEntry(models.Model):
    """Who did what to which Redis key: written for every console mutation."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    key = models.CharField(max_length=1024, blank=True)
    count = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        default_permissions = ("view",)
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.key}"


# The row kinds of each archive page: the DLQ archive lists list and stream entries, the job-key
# archive the other two. Each has a partial index (ArchivedItem.Meta); select them with of_kinds.
QUEUE_KINDS = ("list", "stream")
JOB_KINDS = ("job", "jobindex")


def of_kinds(kinds: tuple[str, ...]) -> RawSQL:
    """A filter for rows of these kinds that SQLite answers from their partial index: it uses one
    only for a query whose filter is the index's condition itself, and ``kind IN (?, ?)`` with bound
    parameters is not (0.2 ms against 350 ms, 7 s cold, to count a million rows). So the kinds are
    written into the SQL, which only these constants may be."""
    if kinds not in (QUEUE_KINDS, JOB_KINDS):
        raise ValueError(f"not an archive's kinds: {kinds!r}")
    column = f"{connection.ops.quote_name(ArchivedItem._meta.db_table)}.{connection.ops.quote_name('kind')}"
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    return RawSQL(f"{column} IN ({listed})", (), output_field=models.BooleanField())  # noqa: S611 (constants)


class ArchivedItem(models.Model):
    """A deleted DLQ entry, kept byte for byte so it can be restored.

    Rows are written as ``pending`` before the entry leaves Redis, tagged with the Lua call
    (``operation``) and their place in it (``batch_index``). A crash in between leaves pending
    rows that ``queues.archive.reconcile`` settles from that call's receipt in Redis, so an
    entry is always in its DLQ or in the archive, never in neither. A restore claims rows the
    same way (``restoring``, tagged with its call); the call pushes them in id order, so its
    receipt's count says which went back.

    ``kind`` says what ``raw`` holds: a list entry's exact bytes, or a stream entry as JSON
    ``{"format": 1, "id": ..., "fields": {...}}`` (fields as text, or all base64 with
    ``"encoding": "base64"`` when one is not UTF-8; see ``queues.streams.Stored``). It is stored,
    not derived from the key, because the key families are configurable.
    """

    class Kind(models.TextChoices):  # QUEUE_KINDS and JOB_KINDS name them again for the indexes
        LIST = "list", "list entry"
        STREAM = "stream", "stream entry"
        JOB = "job", "job key (exact value)"  # queues.jobs_archive: a stale job key
        JOBINDEX = "jobindex", "index entries of an expired job"  # queues.jobs_archive

    class State(models.TextChoices):
        PENDING = "pending", "being deleted"
        ARCHIVED = "archived", "archived"
        RESTORING = "restoring", "being restored"
        RESTORED = "restored", "restored"

    key = models.CharField(max_length=1024)  # indexed with the id (Meta.indexes)
    raw = models.BinaryField()
    fingerprint = models.CharField(max_length=40, db_index=True)
    size = models.PositiveIntegerField()
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING
    )  # indexed with the id
    deleted_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleted_by = models.CharField(max_length=150)
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_by = models.CharField(max_length=150, blank=True)
    restored_to = models.CharField(max_length=1024, blank=True)
    operation = models.CharField(max_length=64, blank=True, db_index=True)
    batch_index = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.LIST)
    entry_id = models.CharField(max_length=48, blank=True, help_text="A stream entry's id when deleted.")
    deletion = models.CharField(
        max_length=32,
        blank=True,
        help_text="The delete action that archived the row (one confirmation, however many steps); "
        "undoing it restores exactly its rows.",
    )

    class Meta:
        # Newest first by id alone: rows are numbered as they are archived, and an order the key's
        # and state's indexes hold (they end in the row id) pages a million rows without a sort.
        # Each archive page counts its rows (its own kinds; one DLQ's, one delete's, and those of
        # them still archived, for "Restore all"). Without an index holding every column a count
        # filters on, SQLite reads each row with its bytes: 0.3-0.6 s a count at a million rows, 7 s
        # cold for a job-key archive holding none of them (docs/benchmarks.md).
        ordering = ("-id",)
        default_permissions = ("view",)
        indexes = (
            models.Index(fields=("key", "id"), name="archive_key_id"),
            models.Index(fields=("state", "id"), name="archive_state_id"),
            models.Index(fields=("deletion", "id"), name="archive_deletion_id"),
            models.Index(fields=("key", "state", "id"), name="archive_key_state_id"),
            models.Index(fields=("deletion", "key", "state", "id"), name="archive_deletion_key_state_id"),
            models.Index(fields=("id",), condition=models.Q(kind__in=QUEUE_KINDS), name="archive_queue_id"),
            models.Index(
                fields=("state", "id"),
                condition=models.Q(kind__in=QUEUE_KINDS),
                name="archive_queue_state_id",
            ),
            models.Index(fields=("id",), condition=models.Q(kind__in=JOB_KINDS), name="archive_job_id"),
        )

    def __str__(self) -> str:
        return f"{self.key} #{self.pk} ({self.get_state_display()})"
