"""``manage.py dlq``: list queues, show, break down, retry, delete and export DLQ entries from a shell.

The same services as the pages and the API; every retry, delete and restore is audited as user
"system". A delete prints how to undo it (``restore --deletion``). Ctrl-C during ``--all`` or a
restore stops after the step under way and prints what was done, as the pages' Stop button does.
"""

from __future__ import annotations

import base64
import json
import shlex
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, cast

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.exceptions import APIException

from console.redis import explain, get_redis
from console.templatetags.console_tags import duration
from queues import actions, api, archive, breakdown, dlq, streams
from queues.api import describe, json_item
from queues.conf import conf
from queues.forms import FILTER_NAMES, RUN_ID, new_nonce
from queues.inventory import list_queues

EXPORT_BATCH = 1000
SUMMARY_WIDTH = 90
INTERRUPTED = (
    "Interrupted during a step. Nothing is lost or doubled: each step is one atomic call, and the "
    "archive rows of a delete cut short are settled by the next archive action a minute on. Run the "
    "same command to go on."
)


def printable(text: str, width: int = SUMMARY_WIDTH) -> str:
    """Text safe for a terminal: control characters (escape sequences) shown as '?', and shortened."""
    clean = "".join(char if char.isprintable() else "?" for char in text)
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def entry_line(entry: dlq.Entry) -> str:
    """index, id, size, encoding, then the problem or the error and camera."""
    if entry.problem:
        about = f"unreadable: {entry.problem}"
    else:
        camera = (entry.job or {}).get("camera_id")
        about = f"camera={camera} error={entry.field('error')}" if camera else f"error={entry.field('error')}"
    encoding = "+".join(entry.decoded.encodings)
    return f"{entry.index:>7}  {entry.id}  {entry.decoded.size:>8} B  {encoding:<12}  {printable(about)}"


def list_only(key: str) -> str:
    """The command shows and exports lists; streams are browsed by id through the API and pages."""
    if api.is_stream(api.known_key(key)):
        raise CommandError(
            f"{printable(key)} is a stream: show and export handle lists only; use "
            "/api/queues/<key>/items/?after=<id> (retry and delete take stream DLQs by entry id or --all)."
        )
    return key


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def options_of(filter_: dict[str, str]) -> str:
    """A filter as this command's options (a value with a control character is left out: it must not
    reach the terminal)."""
    return " ".join(f"--{name} {shlex.quote(text)}" for name, text in filter_.items() if text.isprintable())


def add_filters(parser: CommandParser, scope: str) -> None:
    """The DLQ filters (``FILTER_NAMES``), for a retry, delete or restore of everything matching."""
    parser.add_argument(
        "--q", default="", help=f"{scope}error text or type (stream DLQ: reason) contains this."
    )
    parser.add_argument("--type", default="", help=f"{scope}error type is exactly this.")
    parser.add_argument(
        "--error", default="", help=f"{scope}error's first line (stream DLQ: reason's) is exactly this."
    )
    parser.add_argument("--camera", default="", help=f"{scope}camera is this one.")
    parser.add_argument("--since", default="", help=f"{scope}failure is at or after this ISO time.")
    parser.add_argument(
        "--until", default="", help=f"{scope}failure is by the end of the minute (second, day) it names."
    )


class Command(BaseCommand):
    help = "List queues and show, break down, retry, delete or export dead-letter queue entries."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        commands.add_parser("list", help="Every queue and DLQ with its length and source queue.")
        show = commands.add_parser("show", help="One page of a queue's entries, one line each.")
        show.add_argument("key")
        show.add_argument("--offset", type=int, default=0)
        show.add_argument("--limit", type=int, default=50, help="At most 100 (default 50).")
        show.add_argument("--newest", action="store_true", help="Newest entries first.")
        why = commands.add_parser(
            "breakdown", help="Why a DLQ's newest 5,000 entries failed: error types, errors, cameras."
        )
        why.add_argument("key")
        add_filters(why, "Only entries whose ")
        why.add_argument(
            "--older", default="", help="The entries before those a previous breakdown read (it prints this)."
        )
        for verb in ("retry", "delete"):
            act = commands.add_parser(verb, help=f"{verb.capitalize()} chosen or all (matching) entries.")
            act.add_argument("key")
            chosen = act.add_mutually_exclusive_group(required=True)
            chosen.add_argument(
                "--ids", nargs="+", metavar="ID", help="Ids from 'show' (index:id or id); stream entry ids."
            )
            chosen.add_argument("--all", action="store_true", help="Every entry (or every matching one).")
            add_filters(act, "With --all: ")
        restore = commands.add_parser(
            "restore", help="Put a DLQ's archived (deleted) entries back: all of them, or one delete's."
        )
        add_filters(restore, "Only archived entries whose ")
        restore.add_argument("key")
        restore.add_argument(
            "--deletion", default="", help="Only what this delete archived (its undo; 'delete' prints it)."
        )
        restore.add_argument(
            "--to-source", action="store_true", help="Push their jobs to the source queue instead of the DLQ."
        )
        export = commands.add_parser("export", help="Every entry as NDJSON, with its raw bytes in base64.")
        export.add_argument("key")
        export.add_argument("--output", help="Write to this file instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"do_{options['subcommand']}")
        self.stopped: Callable[[], bool] = lambda: False
        try:
            with self._stop_on_interrupt():
                handler(get_redis(), options)
            if self.stopped():
                raise SystemExit(130)  # the shell's status for Ctrl-C: the run did not finish
        except KeyboardInterrupt:
            raise CommandError(INTERRUPTED) from None
        except redis.RedisError as exc:
            raise CommandError(explain(exc, settings.HSI_REDIS)) from exc
        except actions.BadFilter as exc:
            raise CommandError(str(exc)) from exc
        except APIException as exc:  # a key the API would refuse, with the same sentence
            raise CommandError(str(exc.detail)) from exc

    @contextmanager
    def _stop_on_interrupt(self) -> Iterator[None]:
        """The first Ctrl-C (SIGINT) asks the run to stop after its step; a second one interrupts."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        asked: list[bool] = []

        def ask(signum: int, frame: object) -> None:
            if asked:
                raise KeyboardInterrupt
            asked.append(True)
            self.stderr.write("Stopping after the step under way (Ctrl-C again to interrupt it)…")

        previous = signal.signal(signal.SIGINT, ask)
        self.stopped = lambda: bool(asked)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _said(self, sentence: str) -> str:
        return f"Stopped by Ctrl-C. {sentence}" if self.stopped() else sentence

    def do_list(self, client: redis.Redis, options: dict[str, Any]) -> None:
        infos = list_queues(client)
        width = max([len(printable(info.key, 60)) for info in infos] + [3])
        self.stdout.write(f"{'KEY':<{width}}  {'KIND':<5}  {'TYPE':<6}  {'LENGTH':>8}  {'FILL':>6}  SOURCE")
        for info in infos:
            fill = "-" if info.fill_ratio is None or info.type == "stream" else f"{info.fill_ratio:.0%}"
            self.stdout.write(
                f"{printable(info.key, 60):<{width}}  {info.kind:<5}  {info.type:<6}  {info.length:>8}  "
                f"{fill:>6}  {info.source or '-'}"
            )
        for info in infos:
            if info.alert:
                self.stderr.write(f"{printable(info.key, 60)}: {info.alert}")

    def do_show(self, client: redis.Redis, options: dict[str, Any]) -> None:
        if options["offset"] < 0 or not 1 <= options["limit"] <= 100:
            raise CommandError("--offset must be 0 or more and --limit between 1 and 100.")
        page = dlq.page(
            client,
            list_only(options["key"]),
            options["offset"],
            options["limit"],
            newest_first=options["newest"],
        )
        order = "newest first" if page.newest_first else "oldest first"
        self.stdout.write(f"{printable(page.key)}: {page.total} entries; {len(page.entries)} shown, {order}.")
        for entry in page.entries:
            self.stdout.write(entry_line(entry))

    def do_breakdown(self, client: redis.Redis, options: dict[str, Any]) -> None:
        """Each facet's most common values with their count, share and the option that picks them
        (for ``retry --all`` or ``delete --all``)."""
        key = api.any_dlq_key(options["key"], "only DLQ entries say why they failed")
        filters = actions.Filters.from_query({name: options[name] for name in FILTER_NAMES})
        if problem := breakdown.bad_older(options["older"], api.is_stream(key)):
            raise CommandError(problem.replace("'older'", "--older").replace("link", "line"))
        read = breakdown.of_stream if api.is_stream(key) else breakdown.of_list
        found = read(client, key, filters, options["older"])
        if not found.examined:
            empty = f"{printable(key)} is empty: nothing has failed."
            self.stdout.write(empty if found.newest else f"{upper_first(printable(found.window))}.")
            return
        picked = f", {found.matched:,} matching" if filters.active else ""
        span, moment = "", "%Y-%m-%d %H:%M:%S"
        if found.first_failed and found.last_failed:
            span = f", failed {found.first_failed:{moment}} to {found.last_failed:{moment}} UTC"
        self.stdout.write(f"{upper_first(printable(found.window))}{picked}{span}.")
        for facet in (facet for facet in found.facets if facet.top):
            without = f"; {facet.missing:,} without one" if facet.missing else ""
            self.stdout.write(f"{facet.label} ({facet.distinct:,} different{without}):")
            for value in facet.top:
                share = f"{value.count / found.matched:.0%}"
                option = options_of(value.filter or {})
                self.stdout.write(
                    f"  {value.count:>9,}  {share:>4}  {printable(value.text, 70):<70}  {option}"
                )
            if facet.others:
                self.stdout.write(f"  {facet.others:>9,}        (other values)")
        if found.timeline:
            self.stdout.write(f"When they failed, per {duration(found.bucket_seconds)} (UTC):")
            if found.earlier:
                self.stdout.write(f"  {'earlier':<16}  {found.earlier:>9,}")
            for bucket in found.timeline:
                stretch = options_of(bucket.filter)
                self.stdout.write(f"  {bucket.start:%Y-%m-%d %H:%M}  {bucket.count:>9,}  {stretch}")
        if found.unreadable:
            some = "1 entry is" if found.unreadable == 1 else f"{found.unreadable:,} entries are"
            self.stdout.write(f"{some} not a JSON object (see 'show').")
        if found.older:
            self.stdout.write(f"Older entries: --older {found.older}")

    def do_retry(self, client: redis.Redis, options: dict[str, Any]) -> None:
        self._act(client, "retry", options)

    def do_delete(self, client: redis.Redis, options: dict[str, Any]) -> None:
        self._act(client, "delete", options)

    def _act(self, client: redis.Redis, verb: str, options: dict[str, Any]) -> None:
        key = api.dlq_key(options["key"], verb)
        filters = actions.Filters.from_query({name: options[name] for name in FILTER_NAMES})
        if options["ids"] and filters.active:
            raise CommandError("--q, --type, --error, --camera, --since and --until only apply with --all.")
        deletion = new_nonce()
        undo = f"Undo: manage.py dlq restore {shlex.quote(key)} --deletion {deletion}"
        try:
            if api.is_stream(key):
                outcome = self._act_on_stream(client, key, verb, options, filters, deletion)
            elif options["ids"]:
                ids = list(dict.fromkeys(options["ids"]))  # a repeated id would be acted on twice
                outcome, _ = actions.act_on_selected(
                    client, key, ids, verb=verb, request=None, deletion=deletion
                )
            else:
                outcome = self._sweep(client, key, filters, verb, deletion)
        except KeyboardInterrupt:
            if verb == "delete":  # what it deleted before the interrupt is still one undo
                self.stdout.write(undo)
            raise
        self.stdout.write(self._said(describe(verb, outcome)))
        if verb == "delete" and outcome.done:
            self.stdout.write(undo)

    def do_restore(self, client: redis.Redis, options: dict[str, Any]) -> None:
        """Step after step until the archive (or the delete) has nothing left or the target is full."""
        key, deletion = api.dlq_key(options["key"], "restore"), options["deletion"]
        if deletion and not RUN_ID.fullmatch(deletion):
            raise CommandError(f"--deletion {printable(deletion, 40)!r} is not a delete's id (32 hex).")
        total, to_source = archive.RestoreRun(key, ""), options["to_source"]
        filters = actions.Filters.from_query({name: options[name] for name in FILTER_NAMES})
        while True:
            run, _ = actions.restore_all(
                client,
                key,
                to_source=to_source,
                request=None,
                after=total.after,
                deletion=deletion,
                filters=filters,
                budget_seconds=conf("BULK_CHUNK_SECONDS"),
            )
            run.passed += total.passed
            run.restored += total.restored
            run.not_restored += total.not_restored
            total = run
            if run.full or not run.remaining or self.stopped():
                break
        self.stdout.write(self._said(archive.restore_summary(total.outcome())))

    def _sweep(
        self, client: redis.Redis, key: str, filters: actions.Filters, verb: str, deletion: str
    ) -> dlq.Outcome:
        """Chunk after chunk until nothing is left, the target is full, or every entry that was there
        at the start has been looked at (jobs that fail again and come back are not chased forever).

        A command cannot be continued later, so one that stops early (Ctrl-C, a full target) ends the
        run as the page's "End here" does: the entries it left at the tail go back ahead of those it
        did not examine, and the DLQ is in its old order."""
        at_start = dlq.page(client, key, limit=1).total
        total = dlq.Outcome(key, None)
        position = seen = 0
        end = False
        while True:
            part, next_position, _ = actions.act_on_matching(
                client,
                key,
                filters,
                verb=verb,
                request=None,
                start=position,
                deletion=deletion,
                unexamined=at_start - seen if seen else None,
                budget_seconds=conf("BULK_CHUNK_SECONDS"),
                end=end,
            )
            dlq.merge(total, part)
            seen += part.examined + next_position - position
            position = next_position
            if not part.remaining or seen >= at_start:
                return total
            if not end and (part.full or self.stopped()):
                if not position:  # it left nothing at the tail: nothing is out of order
                    return total
                end = True
                self.stderr.write(
                    f"Putting the {part.remaining:,} entries not examined back behind the others…"
                )

    def _act_on_stream(
        self,
        client: redis.Redis,
        key: str,
        verb: str,
        options: dict[str, Any],
        filters: actions.Filters,
        deletion: str,
    ) -> dlq.Outcome:
        """A stream DLQ: entries by id, or every entry (matching the filters), chunk after chunk."""
        if options["ids"]:
            bad = [i for i in options["ids"] if not streams.is_entry_id(i)]
            if bad:
                raise CommandError(f"{printable(bad[0], 40)!r} is not a stream entry id ('<ms>-<seq>').")
            ids = streams.entry_ids(options["ids"])
            if verb == "retry":
                return actions.retry_stream(client, key, ids, request=None)[0]
            return actions.delete_stream(client, key, ids, request=None, deletion=deletion)[0]
        at_start = streams.length(client, key)
        total = streams.StreamOutcome(key, None)
        after, seen, kept = "-", 0, 0
        while True:
            part, after, now_kept, _ = actions.act_on_stream(
                client,
                key,
                verb=verb,
                request=None,
                after=after,
                filters=filters,
                kept_before=kept,
                deletion=deletion,
                budget_seconds=conf("BULK_CHUNK_SECONDS"),
            )
            streams.merge(total, part)
            seen += part.done + now_kept - kept  # acted on, or looked at and left in place
            kept = now_kept
            if not part.remaining or part.full or seen >= at_start or self.stopped():
                return total

    def do_export(self, client: redis.Redis, options: dict[str, Any]) -> None:
        key = list_only(options["key"])
        with self._output(options["output"]) as out:
            count = 0
            for entry in self._entries(client, key):
                record = {**json_item(entry), "raw_b64": base64.b64encode(entry.raw).decode("ascii")}
                out.write(json.dumps(record, allow_nan=False) + "\n")
                count += 1
        where = options["output"] or "standard output"
        self.stderr.write(f"Exported {count} entries of {printable(key)} to {where}.")

    @staticmethod
    def _entries(client: redis.Redis, key: str) -> Iterator[dlq.Entry]:
        """Every entry present when the export started, EXPORT_BATCH per LRANGE.

        Entries retried or deleted meanwhile shift the list, so a busy DLQ's export is a best effort;
        export a quiet DLQ (or one nobody is acting on) for an exact copy.
        """
        length = client.llen(key)
        for start in range(0, length, EXPORT_BATCH):
            raws = cast(list[bytes], client.lrange(key, start, min(start + EXPORT_BATCH, length) - 1))
            yield from (dlq.Entry.of(key, start + offset, raw) for offset, raw in enumerate(raws))

    @contextmanager
    def _output(self, path: str | None) -> Iterator[TextIO]:
        if not path:
            yield self.stdout  # type: ignore[misc]
            return
        with Path(path).open("w", encoding="utf-8") as handle:
            yield handle
