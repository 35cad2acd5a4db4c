from django.db import migrations, models


class Migration(migrations.Migration):
    """Each archive row names the delete action that archived it, so the action can be undone."""

    dependencies = [
        ("console", "0006_archive_order_by_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="archiveditem",
            name="deletion",
            field=models.CharField(
                blank=True,
                help_text="The delete action that archived the row (one confirmation, however many steps); "
                "undoing it restores exactly its rows.",
                max_length=32,
            ),
        ),
        migrations.AddIndex(
            model_name="archiveditem",
            index=models.Index(fields=["deletion", "id"], name="archive_deletion_id"),
        ),
    ]
