"""Benchmark: the archive page and its search at a real size (300,000 archived DLQ entries).

Run on demand: ``.venv/bin/python bench/archive.py`` (smaller: ``--rows 50000``). It writes the rows
straight into a temporary SQLite database, shaped as a delete-all of ``dlq:detection_queue`` left
them (HSI's entries, every fourth ``Z:``-compressed with a stack trace; the last 40,000 as a second
delete), logs an Admin into Django's test client and measures the server time of:

- the first, middle and last page of the DLQ's archive, the first and last page of the archive's
  landing page (every DLQ), the job-key archive (none of these rows are its own), and the page of
  the second delete;
- a filtered search (camera), which decodes up to 5,000 rows in Python;
- the restore-all confirmation of that filter, which counts matches in the newest 5,000;
- the undo of the second delete: a restore of its 40,000 rows to the DLQ, step after step, against
  a floor of the same bytes pushed with RPUSH (250 a call) and their rows updated with one UPDATE
  per 250;
- a delete-all of ``--delete`` entries as the console does it (each batch archived first), against
  the same sweep deleting without an archive (``dlq.delete_window``).

The floor, from the same run, is SQLite itself: a page's rows read with one raw SQL query
(``LIMIT 50 OFFSET n``, no decoding) plus the ``COUNT(*)`` its pager needs, and 5,000 rows read
raw for a search that examines that many. For reference it also
times the old order (``deleted_at`` first) of the last page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.console_env import admin_client, get, private_console  # noqa: E402

# A restore must not stop at the default QUEUE_MAX_SIZE of 10,000.
FOLDER, SERVER = private_console("hsi-bench-archive-", QUEUE_MAX_SIZE="1000000000")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench.dlq import timed  # noqa: E402
from console.models import ArchivedItem  # noqa: E402
from console.redis import get_redis  # noqa: E402
from queues import actions, archive, dlq  # noqa: E402
from queues.views import ARCHIVE_PER_PAGE, queue_archive  # noqa: E402
from tests.factories import failure  # noqa: E402

DLQ = "dlq:detection_queue"
SECOND_DELETE = 40_000
CHUNK = 5_000


def fill(rows: int) -> str:
    """``rows`` archived entries of DLQ, the last SECOND_DELETE as a delete of their own; its id."""
    first, second = "a" * 32, "b" * 32
    for start in range(0, rows, CHUNK):
        batch = []
        for n in range(start, min(start + CHUNK, rows)):
            raw = failure(n, trace=n % 4 == 0)
            deletion = second if n >= rows - SECOND_DELETE else first
            batch.append(
                ArchivedItem(
                    key=DLQ,
                    raw=raw,
                    fingerprint=dlq.fingerprint(raw),
                    size=len(raw),
                    state=ArchivedItem.State.ARCHIVED,
                    deleted_by="bench",
                    deletion=deletion,
                )
            )
        ArchivedItem.objects.bulk_create(batch)
    return second


ROWS = "SELECT id, key, raw, fingerprint, size, state, deleted_at, deleted_by FROM console_archiveditem"
COUNT = "SELECT COUNT(*) FROM console_archiveditem"
ORDER = " ORDER BY id DESC LIMIT %s OFFSET %s"
PAGE_SQL = {  # a page's count (for its pager) and rows, by what the page filters on
    "key": (COUNT + " WHERE key = %s", ROWS + " WHERE key = %s" + ORDER),
    "deletion": (COUNT + " WHERE deletion = %s", ROWS + " WHERE deletion = %s" + ORDER),
    # The kinds are written into the SQL, as console.models.of_kinds writes them for the pages.
    "dlq kinds": (
        COUNT + " WHERE kind IN ('list', 'stream')",
        ROWS + " WHERE kind IN ('list', 'stream')" + ORDER,
    ),
    "job kinds": (
        COUNT + " WHERE kind IN ('job', 'jobindex')",
        ROWS + " WHERE kind IN ('job', 'jobindex')" + ORDER,
    ),
}


def raw_page(offset: int, column: str = "key", value: str | None = DLQ) -> None:
    """A page's floor: its rows and the count its pager shows, two raw SQL queries."""
    (count, page), bound = PAGE_SQL[column], [] if value is None else [value]
    with connection.cursor() as cursor:
        cursor.execute(count, bound)
        cursor.fetchall()
        cursor.execute(page, [*bound, ARCHIVE_PER_PAGE, offset])
        cursor.fetchall()


def raw_rows(count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, raw FROM console_archiveditem ORDER BY id DESC LIMIT %s", [count])
        cursor.fetchall()


def line(label: str, page: list[float], floor: list[float] | None) -> None:
    median = statistics.median(page) * 1000
    text = f"  {label:44} median {median:8.1f} ms  best {min(page) * 1000:8.1f} ms"
    if floor:
        raw = statistics.median(floor) * 1000
        text += f"   raw SQL {raw:7.1f} ms   ratio {median / raw:6.1f}x"
    print(text)


def bench_restore(deletion: str) -> None:
    """The undo of one delete against pushing its bytes and marking its rows, the least it takes."""
    client = get_redis()
    client.delete(DLQ)
    rows = list(archive.restorable(DLQ, deletion).values_list("pk", "raw"))
    started, after, restored = time.perf_counter(), 0, 0
    while True:
        run = archive.restore_all(client, DLQ, "bench", after=after, deletion=deletion)
        restored, after = restored + run.restored, run.after
        if not run.remaining or run.full:
            break
    took = time.perf_counter() - started
    assert restored == len(rows) == client.llen(DLQ), (restored, len(rows))
    client.delete(DLQ)
    started = time.perf_counter()
    for start in range(0, len(rows), dlq.BATCH_SIZE):
        batch = rows[start : start + dlq.BATCH_SIZE]
        client.rpush(DLQ, *[bytes(raw) for _, raw in batch])
        ArchivedItem.objects.filter(pk__in=[pk for pk, _ in batch]).update(state=ArchivedItem.State.ARCHIVED)
    floor = time.perf_counter() - started
    count = len(rows)
    print(
        f"  undo of one delete ({count:,} rows back to the DLQ)   {took:6.2f} s  {count / took:9,.0f} rows/s"
        f"   floor {floor:5.2f} s ({count / floor:,.0f}/s)   ratio {took / floor:4.1f}x"
    )


def bench_delete(entries: int) -> None:
    """Delete-all with the archive (the console's only delete) against the same sweep without it."""
    client = get_redis()
    raws = [failure(n, trace=n % 4 == 0) for n in range(entries)]

    def refill() -> None:
        client.delete(DLQ)
        for start in range(0, entries, CHUNK):
            client.rpush(DLQ, *raws[start : start + CHUNK])

    refill()
    started, position = time.perf_counter(), 0
    while True:
        part, position, _ = actions.act_on_matching(
            client, DLQ, actions.Filters(), verb="delete", request=None, start=position
        )
        if not part.remaining:
            break
    took = time.perf_counter() - started
    assert client.llen(DLQ) == 0
    refill()
    floor = timed(lambda: dlq.sweep(client, DLQ, dlq.delete_window, dlq.delete_keep(), budget_seconds=3600))
    assert client.llen(DLQ) == 0
    print(
        f"  delete-all of {entries:,}, archived first   {took:6.2f} s  {entries / took:9,.0f} entries/s"
        f"   without archive {floor:5.2f} s ({entries / floor:,.0f}/s)   ratio {took / floor:4.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delete", type=int, default=100_000, help="entries of the delete-all")
    options = parser.parse_args()
    SERVER.start()
    try:
        call_command("migrate", verbosity=0, interactive=False)
        started = time.perf_counter()
        second = fill(options.rows)
        print(f"{options.rows:,} archived rows written in {time.perf_counter() - started:.1f} s ({FOLDER})")
        web, runs = admin_client(), options.runs
        pages = -(-options.rows // ARCHIVE_PER_PAGE)
        base = f"/archive/?key={quote(DLQ)}"
        get(web, base)  # imports, URL resolver, templates
        print(f"server time of the archive pages, {runs} runs each:")
        for label, page in (("first page", 1), ("middle page", pages // 2), ("last page", pages)):
            offset = (page - 1) * ARCHIVE_PER_PAGE
            times = [get(web, f"{base}&page={page}") for _ in range(runs)]
            floor = [timed(partial(raw_page, offset)) for _ in range(runs)]
            line(f"{label} (#{page:,})", times, floor)
        for label, page in (("landing page, every DLQ", 1), ("its last page", pages)):
            offset = (page - 1) * ARCHIVE_PER_PAGE
            times = [get(web, f"/archive/?page={page}") for _ in range(runs)]
            line(label, times, [timed(partial(raw_page, offset, "dlq kinds", None)) for _ in range(runs)])
        times = [get(web, "/jobs/archive/") for _ in range(runs)]
        line(
            "job-key archive (no rows of its own)",
            times,
            [timed(partial(raw_page, 0, "job kinds", None)) for _ in range(runs)],
        )
        times = [get(web, f"/archive/?deletion={second}") for _ in range(runs)]
        line(
            f"one delete's page ({SECOND_DELETE:,} rows)",
            times,
            [timed(lambda: raw_page(0, "deletion", second)) for _ in range(runs)],
        )
        search = [timed(lambda: raw_rows(5_000)) for _ in range(runs)]
        times = [get(web, f"{base}&camera=cam3") for _ in range(runs)]
        line(
            "search camera=cam3 (first 50 matches)",
            times,
            [timed(lambda: raw_rows(250)) for _ in range(runs)],
        )
        times = [get(web, f"{base}&camera=nowhere") for _ in range(runs)]
        line("search without a match (5,000 rows decoded)", times, search)
        times = [get(web, f"/archive/restore-all/?key={quote(DLQ)}&to=dlq&camera=cam3") for _ in range(runs)]
        line("restore-all confirmation, camera=cam3", times, search)
        bench_restore(second)
        bench_delete(options.delete)
        last = queue_archive().filter(key=DLQ).order_by("-deleted_at", "-id")
        old = [timed(lambda: list(last[(pages - 1) * ARCHIVE_PER_PAGE :])) for _ in range(runs)]
        line("reference: last page's rows, old order (deleted_at)", old, None)
    finally:
        SERVER.stop()


if __name__ == "__main__":
    main()
