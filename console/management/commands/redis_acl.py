"""``manage.py redis_acl``: print the console's least-privilege Redis user for this configuration.

The rules come from ``console.redis_acl`` (the same data the docs and tests use). The password is
never printed: a ``>PASSWORD`` placeholder, or with ``--password-env`` the SHA-256 form (``#...``)
that Redis accepts in place of the password itself.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from console import redis_acl


class Command(BaseCommand):
    help = (
        "Print the console's Redis ACL user (ACL SETUSER, or aclfile lines with --aclfile), built "
        "from the configured key families, event channels and prefixes. See docs/redis-acl.md."
    )
    requires_system_checks: list[str] = []  # prints text only: no database, no Redis

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--username",
            default=redis_acl.DEFAULT_USERNAME,
            help=f"ACL user name (default {redis_acl.DEFAULT_USERNAME}).",
        )
        parser.add_argument(
            "--read-only",
            action="store_true",
            help="A Viewer-only user: reads everything, writes only the console's own console:* keys.",
        )
        parser.add_argument(
            "--aclfile", action="store_true", help="Print an aclfile 'user ...' line instead of ACL SETUSER."
        )
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="Read the password from this environment variable; only its SHA-256 (#...) is printed.",
        )
        parser.add_argument(
            "--redis-version",
            metavar="X.Y",
            help="The target server's version: commands it lacks are left out (default: a current one).",
        )
        parser.add_argument(
            "--explain",
            action="store_true",
            help="Print each rule with the reason it is needed instead of the line.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        if not redis_acl.USERNAME_RE.fullmatch(username):
            raise CommandError(
                f"{username[:80]!r} is not a usable ACL user name: "
                "use 1 to 64 letters, digits, '_', '-' or '.'."
            )
        password = self._password(options["password_env"])
        grants = redis_acl.console_rules(read_only=options["read_only"], version=self._version(options))
        if options["explain"]:
            for grant in grants:
                self.stdout.write(f"{grant.rule:<28} {grant.why}")
            return
        line = redis_acl.aclfile_line if options["aclfile"] else redis_acl.setuser_line
        self.stdout.write(line(username, grants, password))

    def _version(self, options: dict[str, Any]) -> tuple[int, int] | None:
        if not options["redis_version"]:
            return None
        try:
            return redis_acl.parse_version(options["redis_version"])
        except ValueError:
            raise CommandError(
                "--redis-version takes the server's version like 7.0 or 7.2.4, "
                f"not {options['redis_version'][:40]!r}."
            ) from None

    def _password(self, variable: str | None) -> str | None:
        if not variable:
            return None
        password = os.environ.get(variable, "")
        if not password:
            raise CommandError(
                f"The environment variable {variable} is empty or not set: export the password there."
            )
        if any(c.isspace() for c in password):
            raise CommandError(
                f"The password in {variable} contains white space, which an aclfile cannot hold."
            )
        return password
