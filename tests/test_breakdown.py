"""Why a DLQ's entries failed: the breakdown page and API on a real Redis, and its links' filters."""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from datetime import UTC, datetime
from html import unescape
from io import StringIO
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queues import breakdown, dlq, search
from queues.codec import encode_payload
from tests.conftest import logged_in

pytestmark = pytest.mark.django_db

DLQ, STREAM_DLQ = "dlq:detection_queue", "detections:stream:dlq"
ERRORS = (  # error, error_type: the first three 2:1:1, stack-trace entries compressed
    ("Detector unavailable: ConnectError\nTraceback (most recent call last): …", "DetectorUnavailableError"),
    ("Detector unavailable: ConnectError\nTraceback (most recent call last): …", "DetectorUnavailableError"),
    ("Detection request timed out after 30.0s", "TimeoutError"),
    ("Invalid image: truncated JPEG", "ValueError"),
)


def failure(n: int, *, trace: bool = False) -> bytes:
    error, error_type = ERRORS[n % 4]
    entry: dict[str, Any] = {
        "original_job": {"camera_id": f"cam{n % 3}", "file_path": f"/export/{n}.jpg", "n": n},
        "error": error,
        "error_type": error_type,
        "attempt_count": 3,
        "first_failed_at": "2026-02-11T22:00:00+00:00",
        "last_failed_at": f"2026-02-11T22:{n % 60:02d}:00+00:00",
        "queue_name": "detection_queue",
    }
    if trace:
        entry["stack_trace"] = "".join(f'  File "mod_{i}.py", line {i * n}\n' for i in range(80))
    return encode_payload(entry)


def page_url(key: str) -> str:
    return reverse("admin:queue_breakdown", args=[key])


def api_url(key: str) -> str:
    return f"/api/dlq/{quote(key, safe='')}/breakdown/"


def counts(facet: dict[str, Any]) -> dict[str, int]:
    return {value["value"]: value["count"] for value in facet["values"]}


def test_counts_error_types_errors_and_cameras_of_compressed_and_plain_entries(
    redis_client: redis.Redis, viewer_client: Client
) -> None:
    raws = [failure(n, trace=n % 2 == 0) for n in range(120)] + [b"\xff not json", b"[1, 2]"]
    redis_client.rpush(DLQ, *raws)
    assert sum(raw.startswith(b"Z:") for raw in raws) == 60
    body = viewer_client.get(api_url(DLQ)).json()
    assert (body["total"], body["examined"], body["complete"], body["unreadable"]) == (122, 122, True, 2)
    assert counts(body["error_type"]) == {
        "DetectorUnavailableError": 60,
        "TimeoutError": 30,
        "ValueError": 30,
    }
    assert counts(body["error"]) == {
        "Detector unavailable: ConnectError": 60,  # the first line only
        "Detection request timed out after 30.0s": 30,
        "Invalid image: truncated JPEG": 30,
    }
    assert counts(body["camera"]) == {"cam0": 40, "cam1": 40, "cam2": 40}
    assert body["camera"]["missing"] == 2 and body["camera"]["others"] == 0
    assert body["error_type"]["values"][0]["filter"] == {"type": "DetectorUnavailableError"}
    assert body["error"]["values"][0]["filter"] == {"error": "Detector unavailable: ConnectError"}
    assert body["camera"]["values"][0]["filter"] in (
        {"camera": "cam0"},
        {"camera": "cam1"},
        {"camera": "cam2"},
    )
    assert (body["first_failed"], body["last_failed"]) == (
        "2026-02-11T22:00:00+00:00",
        "2026-02-11T22:59:00+00:00",
    )


def test_each_value_retries_exactly_the_entries_it_counted(redis_client: redis.Redis, operator: User) -> None:
    """For every value linked, "Retry all matching" with its filter counts what the breakdown counted,
    also where one value's text is part of another's (an error type inside another type or error)."""
    redis_client.rpush(DLQ, *[failure(n, trace=n % 3 == 0) for n in range(300)])
    longer = {  # no failure time: the timeline below is unchanged
        "original_job": {"camera_id": "cam0"},
        "error": "Detection request timed out after 30.0s (TimeoutError while reading)",
        "error_type": "ReadTimeoutError",
    }
    redis_client.rpush(DLQ, *[json.dumps(longer).encode()] * 20)
    client = logged_in(operator)
    found = breakdown.of_list(redis_client, DLQ)
    checked = 0
    for facet in found.facets:
        for value in facet.top:
            assert value.filter is not None
            confirm = client.get(reverse("admin:queue_matching", args=[DLQ, "retry"]), value.filter)
            assert (confirm.context["count"], confirm.context["exact"]) == (value.count, True), value.text
            checked += 1
    assert checked == 4 + 4 + 3
    contains = client.get(reverse("admin:queue_matching", args=[DLQ, "retry"]), {"q": "TimeoutError"})
    assert contains.context["count"] == 75 + 20, "the text filter finds the name inside the others"
    assert [(f"{b.start:%H:%M}", b.seconds, b.count) for b in found.timeline] == [
        (f"22:{minute:02d}", 300, 25) for minute in range(0, 60, 5)
    ], "times 22:00 to 22:59: twelve stretches of 5 minutes, 25 entries each"
    for bucket in found.timeline:
        confirm = client.get(reverse("admin:queue_matching", args=[DLQ, "retry"]), bucket.filter)
        assert confirm.context["count"] == bucket.count, bucket.filter


def test_a_filtered_breakdown_counts_the_matching_entries_and_each_link_narrows_the_filter(
    redis_client: redis.Redis, operator: User, viewer: User
) -> None:
    """Drill down: why did cam1's entries fail since 22:07? Each value and stretch lists exactly the
    entries counted, inside the filter (a stretch that starts before 22:07 starts at 22:07)."""
    redis_client.rpush(DLQ, *[failure(n, trace=n % 3 == 0) for n in range(300)])
    client = logged_in(operator)
    query = {"camera": "cam1", "since": "2026-02-11T22:07"}
    response = client.get(page_url(DLQ), query)
    found = response.context["breakdown"]
    picked = [n for n in range(300) if n % 3 == 1 and n % 60 >= 7]
    assert len(picked) == 90 and (found.examined, found.matched) == (300, 90)
    html = " ".join(unescape(response.content.decode()).split())
    assert (
        f"Of all 300 entries of {DLQ}, 90 match camera “cam1”, failed since “2026-02-11T22:07”, which" in html
    )
    assert counts(found.facets[2].as_json()) == {"cam1": 90}
    assert dict(Counter(ERRORS[n % 4][1] for n in picked)) == {v.text: v.count for v in found.facets[0].top}
    matching = reverse("admin:queue_matching", args=[DLQ, "retry"])
    for facet in found.facets:
        for value in facet.top:
            assert value.filter is not None and value.filter.items() >= query.items(), value.filter
            assert client.get(matching, value.filter).context["count"] == value.count, value.filter
    assert found.timeline[0].filter == {**query, "until": "2026-02-11T22:09"}, "the stretch 22:05 to 22:09"
    assert sum(bucket.count for bucket in found.timeline) == 90
    for bucket in found.timeline:
        assert client.get(matching, bucket.filter).context["count"] == bucket.count, bucket.filter
    items = reverse("admin:queue_items", args=[DLQ])
    assert (
        f'href="{items}?camera=cam1&amp;since=2026-02-11T22%3A07&amp;order=newest"'
        in response.content.decode()
    )
    retry_all = f'href="{matching}?camera=cam1&amp;since=2026-02-11T22%3A07" data-testid="breakdown-retry"'
    assert retry_all in response.content.decode(), "an Operator retries them from here"
    assert 'data-testid="breakdown-retry"' not in logged_in(viewer).get(page_url(DLQ), query).content.decode()
    listing = client.get(items, query).content.decode()
    assert (
        f'href="{page_url(DLQ)}?camera=cam1&amp;since=2026-02-11T22%3A07" data-testid="breakdown-link"'
        in listing
    )
    body = client.get(api_url(DLQ), query).json()
    assert (body["examined"], body["matched"], body["filter"]) == (300, 90, query)
    assert body["camera"]["values"] == [{"value": "cam1", "count": 90, "filter": query}]
    lines = run("breakdown", DLQ, "--camera", "cam1", "--since", "2026-02-11T22:07").splitlines()
    assert lines[0].startswith(f"All 300 entries of {DLQ}, 90 matching, failed 2026-02-11 22:07:00 to ")
    assert "--camera cam1 --since 2026-02-11T22:07 --type TimeoutError" in "\n".join(lines)
    none = " ".join(unescape(client.get(page_url(DLQ), {"camera": "nobody"}).content.decode()).split())
    assert f"Of all 300 entries of {DLQ}, none match camera “nobody”." in none
    bad = client.get(page_url(DLQ), {"until": "soon"})
    assert bad.status_code == 200 and bad.context["breakdown"].matched == 300
    assert "'until' must be a date and time like 2026-02-11T22:04, not 'soon'." in unescape(
        bad.content.decode()
    )
    assert client.get(api_url(DLQ), {"until": "soon"}).status_code == 400


def test_a_stretch_lists_the_entries_of_its_last_second_and_until_covers_what_it_names(
    redis_client: redis.Redis, operator: User
) -> None:
    """HSI's failure times have microseconds: an entry at 22:04:59.73 is in the 22:04 stretch, and its
    link must list it; "until 22:04" means to the end of that minute, as a person means it."""
    times = ["22:00:00.000001", "22:02:30.5", "22:04:59.731204", "22:05:00", "22:05:59.999999"]
    redis_client.rpush(
        DLQ,
        *[
            json.dumps({"original_job": {}, "error": "x", "last_failed_at": f"2026-02-11T{t}+00:00"}).encode()
            for t in times
        ],
    )
    found = breakdown.of_list(redis_client, DLQ)
    assert [(f"{b.start:%H:%M}", b.count) for b in found.timeline] == [
        ("22:00", 1),
        ("22:01", 0),
        ("22:02", 1),
        ("22:03", 0),
        ("22:04", 1),
        ("22:05", 2),
    ]
    assert found.timeline[4].filter == {"since": "2026-02-11T22:04", "until": "2026-02-11T22:04"}
    client = logged_in(operator)
    matching = reverse("admin:queue_matching", args=[DLQ, "retry"])
    for bucket in found.timeline:
        assert client.get(matching, bucket.filter).context["count"] == bucket.count, bucket.filter
    for since, until, count in (
        ("2026-02-11T22:00", "2026-02-11T22:04", 3),  # the whole minute 22:04
        ("2026-02-11T22:00", "2026-02-11T22:04:59", 3),  # the whole second
        ("2026-02-11T22:00", "2026-02-11T22:04:59.5", 2),  # an instant: as typed
        ("2026-02-11T22:02:30.5", "2026-02-11T22", 4),  # from that very instant; the whole hour
        ("2026-02-11", "2026-02-11", 5),  # the whole day
        ("2026-02-11T22:05", "2026-02-11T22:05", 2),
    ):
        confirm = client.get(matching, {"since": since, "until": until})
        assert confirm.context["count"] == count, (since, until)
    described = unescape(client.get(matching, {"until": "2026-02-11T22:04:59"}).content.decode())
    assert "failed until “2026-02-11T22:04”" in described, "the same span as the second it names"
    described = unescape(client.get(matching, {"until": "2026-02-11T22:04:30"}).content.decode())
    assert "failed until “2026-02-11T22:04:30”" in described


def test_the_timeline_ends_at_the_newest_failure_and_an_odd_time_cannot_flatten_it() -> None:
    now = datetime(2026, 11, 30, 14, 0, tzinfo=UTC).timestamp()
    times = [now + second * 36 for second in range(200)] + [now - 25 * 365 * 86400]  # 2 h, and 2001
    buckets, earlier = breakdown.timeline(times)
    assert (len(buckets), buckets[0].seconds, earlier) == (24, 300, 1)
    assert f"{buckets[0].start:%Y-%m-%d %H:%M}" == "2026-11-30 14:00"
    assert sum(b.count for b in buckets) == 200
    assert buckets[0].filter == {"since": "2026-11-30T14:00", "until": "2026-11-30T14:04"}
    assert breakdown.timeline([]) == ([], 0)
    weeks, earlier = breakdown.timeline([now - 400 * 86400, now])  # too few entries to call one odd
    assert (weeks[0].seconds, len(weeks), earlier) == (7 * 86400, 24, 1), "the newest 24 weeks, 1 before"


def test_the_page_shows_the_newest_entries_and_links_each_value(
    redis_client: redis.Redis, viewer: User, settings: Any
) -> None:
    numbers = [*range(search.MAX_EXAMINED + 40), *[2] * 10]  # the newest: ten more timeouts of cam2
    redis_client.rpush(DLQ, *[failure(n) for n in numbers])
    response = logged_in(viewer).get(page_url(DLQ))
    html = " ".join(unescape(response.content.decode()).split())
    assert response.status_code == 200
    scope = f"The newest {search.MAX_EXAMINED:,} of {search.MAX_EXAMINED + 50:,} entries of {DLQ}"
    assert scope in html
    newest = Counter(ERRORS[n % 4][1] for n in numbers[-search.MAX_EXAMINED :])
    assert newest["TimeoutError"] == 1_260 - 12 + 10, "the 50 oldest left out, 12 of them timeouts"
    error_types = response.context["breakdown"].facets[0].top
    assert [(v.text, v.count) for v in error_types] == newest.most_common()
    items = reverse("admin:queue_items", args=[DLQ])
    assert f'href="{items}?type=TimeoutError&order=newest"' in html
    assert f'href="{items}?camera=cam2&order=newest"' in html
    assert "When they failed: entries per 5m" in html
    assert f'href="{items}?since=2026-02-11T22%3A55&until=2026-02-11T22%3A59&order=newest"' in html
    listing = logged_in(viewer).get(reverse("admin:queue_items", args=[DLQ])).content.decode()
    assert f'href="{page_url(DLQ)}"' in listing, "the DLQ page links to its breakdown"
    queues = logged_in(viewer).get(reverse("admin:queue_list")).content.decode()
    assert f'href="{page_url(DLQ)}" data-testid="why"' in queues, "so does the DLQ's row of the queue list"
    redis_client.rpush("detection_queue", b"{}")
    queues = logged_in(viewer).get(reverse("admin:queue_list")).content.decode()
    assert 'data-key="detection_queue"' in queues and queues.count('data-testid="why"') == 1, (
        "not a work queue"
    )


def test_older_entries_are_broken_down_window_by_window(
    redis_client: redis.Redis, viewer_client: Client
) -> None:
    """Past the newest 5,000: "Older entries →" reads the 5,000 before them, and so on to the oldest,
    in a list and in a stream DLQ alike; every entry is counted in exactly one window."""
    redis_client.rpush(DLQ, *[failure(n) for n in range(2 * search.MAX_EXAMINED + 300)])
    seen: Counter[str] = Counter()
    older, windows = "", []
    while True:
        body = viewer_client.get(api_url(DLQ), {"older": older} if older else {}).json()
        seen.update({value["value"]: value["count"] for value in body["camera"]["values"]})
        windows.append(body["examined"])
        if body["older"] is None:
            break
        older = body["older"]
    assert windows == [5_000, 5_000, 300] and seen.total() == 10_300
    assert seen == Counter(f"cam{n % 3}" for n in range(10_300))
    html = " ".join(unescape(viewer_client.get(page_url(DLQ), {"older": "5000"}).content.decode()).split())
    assert f"The 5,000 entries of {DLQ} before its newest 5,000 (10,300 in all), which failed" in html
    assert "← The newest entries" in html and 'href="?older=10000" data-testid="older"' in html
    filtered = viewer_client.get(page_url(DLQ), {"camera": "cam0", "older": "10000"}).content.decode()
    assert "Of the 300 entries of" in unescape(filtered) and 'href="?camera=cam0"' in filtered
    assert 'data-testid="older"' not in filtered, "nothing older than the oldest"
    beyond = unescape(viewer_client.get(page_url(DLQ), {"older": "20000"}).content.decode())
    assert f"No entries of {DLQ} before its newest 20,000 (10,300 in all)." in beyond
    assert (
        run("breakdown", DLQ, "--older", "10000")
        .splitlines()[0]
        .startswith(f"The 300 entries of {DLQ} before its newest 10,000 (10,300 in all), failed")
    )
    assert run("breakdown", DLQ).splitlines()[-1] == "Older entries: --older 5000"
    refused = viewer_client.get(api_url(DLQ), {"older": "1-0"})
    assert refused.status_code == 400 and refused.json() == {
        "error": "bad_older",
        "detail": "'older' must be a number of entries, as the 'Older entries' link gives it, not '1-0'.",
    }
    page = unescape(viewer_client.get(page_url(DLQ), {"older": "-5"}).content.decode())
    assert (
        "'older' must be a number of entries" in page
        and f"The newest 5,000 of 10,300 entries of {DLQ}" in page
    )
    with pytest.raises(CommandError, match="--older must be a number of entries"):
        run("breakdown", DLQ, "--older", "x")
    ids = [
        dlq.as_bytes(redis_client.xadd(STREAM_DLQ, {"camera_id": f"cam{n % 3}", "dlq_reason": "x"}))
        for n in range(5_100)
    ]
    first = viewer_client.get(api_url(STREAM_DLQ)).json()
    assert (first["examined"], first["older"]) == (5_000, ids[100].decode())
    second = viewer_client.get(api_url(STREAM_DLQ), {"older": first["older"]}).json()
    assert (second["examined"], second["older"], second["total"]) == (100, None, 5_100)
    assert "an entry id like" in viewer_client.get(api_url(STREAM_DLQ), {"older": "5000"}).json()["detail"]
    html = unescape(viewer_client.get(page_url(STREAM_DLQ), {"older": first["older"]}).content.decode())
    assert f"The 100 entries of {STREAM_DLQ} before entry {ids[100].decode()} (5,100 in all)" in html


def test_stream_dlqs_are_broken_down_by_reason_and_camera(
    redis_client: redis.Redis, viewer_client: Client, operator: User
) -> None:
    for n in range(9):
        fields: dict[Any, Any] = {
            "camera_id": f"cam{n % 3}",
            "dlq_reason": "poison_message" if n % 3 else "max_retries\ndetail",
        }
        redis_client.xadd(STREAM_DLQ, fields)
    body = viewer_client.get(api_url(STREAM_DLQ)).json()
    assert counts(body["error"]) == {"poison_message": 6, "max_retries": 3}
    assert counts(body["camera"]) == {"cam0": 3, "cam1": 3, "cam2": 3}
    assert body["error_type"] == {"values": [], "others": 0, "distinct": 0, "missing": 9}
    html = " ".join(unescape(viewer_client.get(page_url(STREAM_DLQ)).content.decode()).split())
    assert "All 9 entries of detections:stream:dlq" in html and "poison_message" in html
    assert "Reason (dlq_reason): 2 different" in html and "Error type" not in html
    assert body["error"]["values"][1]["filter"] == {"error": "max_retries"}
    cam0 = viewer_client.get(api_url(STREAM_DLQ), {"camera": "cam0"}).json()
    assert (cam0["matched"], counts(cam0["error"])) == (3, {"max_retries": 3})
    assert cam0["error"]["values"][0]["filter"] == {"camera": "cam0", "error": "max_retries"}
    html = logged_in(operator).get(page_url(STREAM_DLQ), {"camera": "cam0"}).content.decode()
    link = re.search(r'href="([^"]+)" data-testid="breakdown-retry"', html)
    assert link is not None
    confirm = logged_in(operator).get(unescape(link.group(1)))
    assert (confirm.status_code, confirm.context["count"]) == (200, 3)


def test_the_exact_filters_show_on_the_page_and_act_through_the_api(
    redis_client: redis.Redis, operator: User
) -> None:
    redis_client.rpush(DLQ, *[failure(n) for n in range(8)])
    longer = {
        "original_job": {"camera_id": "cam0"},
        "error": "Detection request timed out",
        "error_type": "X",
    }
    redis_client.rpush(DLQ, json.dumps(longer).encode())  # its error is the start of a timeout's
    client = logged_in(operator)
    listing = client.get(
        reverse("admin:queue_items", args=[DLQ]), {"type": "TimeoutError", "order": "newest"}
    )
    html = unescape(listing.content.decode())
    assert 'name="type" value="TimeoutError"' in html, "the exact filter stays in the form"
    rows = listing.context["listing"].rows
    assert [json.loads(row.entry.raw)["original_job"]["n"] for row in rows] == [6, 2]
    matching = reverse("admin:queue_matching", args=[DLQ, "retry"])
    assert f'href="{matching}?type=TimeoutError"' in html, "Retry all matching… carries it"
    confirm = client.get(matching, {"error": "Detection request timed out"})
    assert confirm.context["count"] == 1, (
        "the error's first line exactly, not the timeouts that start with it"
    )
    assert "error exactly “Detection request timed out”" in unescape(confirm.content.decode())
    api = f"/api/dlq/{quote(DLQ, safe='')}/retry/"
    body = {"all": True, "filter": {"type": "TimeoutError"}}
    answer = client.post(api, json.dumps(body), content_type="application/json").json()
    assert (answer["retried"], answer["unmatched"]) == (2, 7)
    assert [json.loads(raw)["n"] for raw in redis_client.lrange("detection_queue", 0, -1)] == [2, 6]
    for n in range(3):
        redis_client.xadd(STREAM_DLQ, {"camera_id": "cam0", "dlq_reason": f"max_retries{'!' * n}\ndetail"})
    stream_api = f"/api/dlq/{quote(STREAM_DLQ, safe='')}/retry/"
    for filter_, retried in (({"type": "max_retries"}, 0), ({"error": "max_retries!"}, 1)):
        answer = client.post(
            stream_api, json.dumps({"all": True, "filter": filter_}), content_type="application/json"
        )
        assert answer.json()["retried"] == retried, filter_


def test_empty_dlqs_work_queues_and_strangers(
    redis_client: redis.Redis, viewer_client: Client, client: Client
) -> None:
    html = viewer_client.get(page_url(DLQ)).content.decode()
    assert f"{DLQ} is empty: nothing has failed." in html
    assert viewer_client.get(api_url(DLQ)).json()["examined"] == 0
    refused = viewer_client.get(api_url("detection_queue"))
    assert refused.status_code == 400 and refused.json() == {
        "error": "not_a_dlq",
        "detail": "'detection_queue' is a work queue, not a dead-letter queue: "
        "only DLQ entries say why they failed.",
    }
    assert viewer_client.get(page_url("detection_queue")).status_code == 404
    assert viewer_client.get(api_url("job:status:x")).status_code == 404
    assert client.get(page_url(DLQ)).status_code == 302, "login required"
    assert client.get(api_url(DLQ)).status_code in (401, 403)
    assert viewer_client.post(page_url(DLQ)).status_code == 405


def test_one_entry_and_one_unreadable_entry_are_counted_in_the_singular(
    redis_client: redis.Redis, viewer_client: Client
) -> None:
    redis_client.rpush(DLQ, failure(5))
    html = " ".join(unescape(viewer_client.get(page_url(DLQ)).content.decode()).split())
    assert f"The only entry of {DLQ}, which failed at 2026-02-11 22:05:00 UTC." in html
    redis_client.rpush(DLQ, b"\xff not json", json.dumps({"error": "no camera, no type"}).encode())
    html = " ".join(unescape(viewer_client.get(page_url(DLQ)).content.decode()).split())
    assert f"All 3 entries of {DLQ}, which failed at 2026-02-11 22:05:00 UTC." in html
    assert "1 of them is not a JSON object" in html
    assert "Error: 2 different; 1 entry without one" in html, "the unreadable one"
    assert "Error type: 1 different; 2 entries without one" in html
    redis_client.delete(DLQ)
    redis_client.rpush(DLQ, b"<not json>")
    html = " ".join(unescape(viewer_client.get(page_url(DLQ)).content.decode()).split())
    unreadable = '<strong data-testid="unreadable">It is not a JSON object</strong>'
    assert f"The only entry of {DLQ}. {unreadable}" in html


@hypothesis_settings(
    max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.one_of(st.text(max_size=200), st.integers(), st.none(), st.just("<script>alert(1)</script>")),
        min_size=3,
        max_size=3,
    ),
    junk=st.binary(max_size=100),
)
def test_any_value_is_counted_and_escaped(
    redis_client: redis.Redis, viewer: User, values: list[Any], junk: bytes
) -> None:
    error, error_type, camera = values
    entry = {"original_job": {"camera_id": camera}, "error": error, "error_type": error_type}
    redis_client.delete(DLQ)
    redis_client.rpush(DLQ, json.dumps(entry).encode(), junk)
    response = logged_in(viewer).get(page_url(DLQ))
    assert response.status_code == 200
    assert "<script>alert" not in response.content.decode()
    body = logged_in(viewer).get(api_url(DLQ)).json()
    assert body["examined"] == 2
    assert (
        sum(Counter(counts(body[name])).total() + body[name]["missing"] for name in ("error", "camera")) == 4
    )


def headline_of(client: Client, key: str, **query: str) -> str:
    html = client.get(reverse("admin:queue_items", args=[key]), query).content.decode()
    found = re.search(r'<p class="queues-headline" data-testid="headline">(.*?)</p>', html, re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(1))).split()) if found else ""


def test_the_dlq_page_says_what_the_newest_entries_mostly_failed_with(
    redis_client: redis.Redis, viewer_client: Client, operator: User
) -> None:
    assert headline_of(viewer_client, DLQ) == "", "an empty DLQ says nothing"
    redis_client.rpush(DLQ, failure(2))
    assert headline_of(viewer_client, DLQ) == (
        "The only entry failed with “Detection request timed out after 30.0s”."
    )
    older = [failure(2) for _ in range(breakdown.HEADLINE_EXAMINED)]
    newest = [failure(n, trace=n % 2 == 0) for n in range(400)] + [b"\xff not json"] * 100
    redis_client.delete(DLQ)
    redis_client.rpush(DLQ, *older, *newest)
    assert headline_of(viewer_client, DLQ) == (
        "Of the newest 500, 40% (200) failed with “Detector unavailable: ConnectError”, "
        "the most common of 3 different errors."
    ), "only the newest entries count: the timeouts before them do not"
    html = viewer_client.get(reverse("admin:queue_items", args=[DLQ])).content.decode()
    link = re.search(r'href="([^"]+)" data-testid="headline-top"', html)
    assert link is not None
    listed = viewer_client.get(unescape(link.group(1)))
    assert listed.context["filters"].error == "Detector unavailable: ConnectError"
    jobs = [row.entry.job for row in listed.context["listing"].rows]
    assert len(jobs) == 50 and all(job is not None and job["n"] % 4 < 2 for job in jobs)
    assert headline_of(viewer_client, DLQ, camera="cam1") == "", "a filtered page has its own breakdown"
    assert "Error types, errors, cameras" in html, "the breakdown is a click away"


def test_the_headline_follows_every_change_of_the_dlq(redis_client: redis.Redis, operator: User) -> None:
    client = logged_in(operator)
    redis_client.rpush(DLQ, *[failure(3) for _ in range(3)])
    assert headline_of(client, DLQ).startswith("Of all 3 entries, 100% (3) failed with “Invalid image")
    redis_client.rpush(DLQ, *[failure(2) for _ in range(4)])  # HSI adds entries
    assert headline_of(client, DLQ).startswith("Of all 7 entries, 57% (4) failed with “Detection request")
    api = f"/api/dlq/{quote(DLQ, safe='')}/retry/"
    answer = client.post(
        api, json.dumps({"all": True, "filter": {"type": "TimeoutError"}}), "application/json"
    )
    assert answer.json()["retried"] == 4
    assert headline_of(client, DLQ).startswith("Of all 3 entries, 100% (3) failed with “Invalid image")
    redis_client.lset(DLQ, -1, failure(2))  # type: ignore[arg-type]  # same length, another newest entry
    assert headline_of(client, DLQ).startswith("Of all 3 entries, 67% (2) failed with “Invalid image")
    redis_client.lset(DLQ, 0, failure(2))  # type: ignore[arg-type]  # nothing HSI or the console does: only the cache shows it
    assert headline_of(client, DLQ).startswith("Of all 3 entries, 67% (2) failed with “Invalid image"), (
        "a page view reads the DLQ's length and newest entry, not the newest 500 again"
    )
    redis_client.delete(DLQ)
    assert headline_of(client, DLQ) == ""


def test_a_stream_dlq_says_its_most_common_reason(redis_client: redis.Redis, viewer_client: Client) -> None:
    for n in range(5):
        redis_client.xadd(
            STREAM_DLQ, {"camera_id": "cam0", "dlq_reason": "poison_message" if n % 2 else "<b>x"}
        )
    assert headline_of(viewer_client, STREAM_DLQ) == (
        "Of all 5 entries, 60% (3) failed with “<b>x”, the most common of 2 different reasons."
    )
    html = viewer_client.get(reverse("admin:queue_items", args=[STREAM_DLQ])).content.decode()
    assert "“&lt;b&gt;x”" in html and "<b>x" not in html
    assert headline_of(viewer_client, "detections:stream") == "", "a work stream has no headline"


def run(*args: str) -> str:
    out = StringIO()
    call_command("dlq", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_prints_each_value_with_the_option_that_retries_it(redis_client: redis.Redis) -> None:
    redis_client.rpush(DLQ, *[failure(n, trace=n % 2 == 0) for n in range(8)], b"\xff")
    lines = run("breakdown", DLQ).splitlines()
    assert lines[0] == f"All 9 entries of {DLQ}, failed 2026-02-11 22:00:00 to 2026-02-11 22:07:00 UTC."
    assert lines[1] == "Error type (3 different; 1 without one):"
    assert lines[2].split() == ["4", "44%", "DetectorUnavailableError", "--type", "DetectorUnavailableError"]
    assert "--error 'Detector unavailable: ConnectError'" in lines[6]
    assert lines[-1] == "1 entry is not a JSON object (see 'show')."
    assert lines[-10:-1] == [
        "When they failed, per 1m (UTC):",
        *(
            f"  2026-02-11 22:{m:02d}          1  --since 2026-02-11T22:{m:02d} --until 2026-02-11T22:{m:02d}"
            for m in range(8)
        ),
    ]
    option = lines[6].split("--error ", 1)[1]
    retried = run("retry", DLQ, "--all", "--error", shlex.split(option)[0])
    assert retried.startswith(f"Retried 4 of {DLQ} to detection_queue;")
    redis_client.rpush("dlq:hostile", json.dumps({"original_job": {}, "error": "\x1b[2J wiped"}).encode())
    assert "\x1b" not in run("breakdown", "dlq:hostile") and "?[2J wiped" in run("breakdown", "dlq:hostile")
    assert run("breakdown", "dlq:nothing_here") == "dlq:nothing_here is empty: nothing has failed.\n"
    with pytest.raises(CommandError, match="only DLQ entries say why they failed"):
        run("breakdown", "detection_queue")
