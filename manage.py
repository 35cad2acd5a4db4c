#!/usr/bin/env python
"""Django's command-line utility for HSI Console."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    from django.conf import settings
    from django.core.management import execute_from_command_line

    from console.envvars import start_or_explain

    with start_or_explain():  # a wrong setting is one sentence, not a traceback
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
