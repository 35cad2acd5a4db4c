from django.urls import include, path

from console import health
from console.admin import console_site
from console.api import RedisOverviewView

urlpatterns = [
    path("api/system/health/ready", health.ready, name="health-ready"),
    path("api/system/health/live", health.live, name="health-live"),
    path("api/redis/overview", RedisOverviewView.as_view(), name="api-overview"),
    path("api/orchestrator/", include("orchestrator.api_urls")),
    path("api/jobs/", include("queues.jobs_api")),
    path("api/", include("queues.api_urls")),
    path("", console_site.urls),
]
