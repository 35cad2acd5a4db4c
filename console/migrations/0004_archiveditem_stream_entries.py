# Stream DLQ entries in the archive: what a row's raw bytes hold, and a stream entry's id.
# Every row written before this migration is a list entry (streams could not be deleted then).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0003_archived_item"),
    ]

    operations = [
        migrations.AddField(
            model_name="archiveditem",
            name="kind",
            field=models.CharField(
                choices=[("list", "list entry"), ("stream", "stream entry")], default="list", max_length=8
            ),
        ),
        migrations.AddField(
            model_name="archiveditem",
            name="entry_id",
            field=models.CharField(blank=True, help_text="A stream entry's id when deleted.", max_length=48),
        ),
    ]
