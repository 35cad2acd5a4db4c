"""JSON API routes for queues, DLQs and the archive (keys are URL-encoded path segments)."""

from django.urls import URLPattern, path

from queues import api
from queues.keyspace_api import OverviewView

urlpatterns: list[URLPattern] = [
    path("overview/", OverviewView.as_view(), name="api-redis-overview"),
    path("queues/", api.QueueListView.as_view(), name="api-queues"),
    path("queues/<path:key>/items/", api.QueueItemsView.as_view(), name="api-queue-items"),
    path("dlq/<path:key>/breakdown/", api.BreakdownView.as_view(), name="api-dlq-breakdown"),
    path("dlq/<path:key>/retry/", api.RetryView.as_view(), name="api-dlq-retry"),
    path("dlq/<path:key>/delete/", api.DeleteView.as_view(), name="api-dlq-delete"),
    path("archive/", api.ArchiveListView.as_view(), name="api-archive"),
    path("archive/restore/", api.RestoreView.as_view(), name="api-archive-restore"),
    path("archive/restore-all/", api.RestoreAllView.as_view(), name="api-archive-restore-all"),
    path("schema/", api.SchemaView.as_view(), name="api-schema"),
]
