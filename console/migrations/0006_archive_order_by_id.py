from django.db import migrations, models


class Migration(migrations.Migration):
    """Archive pages ordered by row id, which the key and state indexes hold: no page sorts."""

    dependencies = [
        ("console", "0005_archiveditem_job_kinds"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="archiveditem",
            options={"default_permissions": ("view",), "ordering": ("-id",)},
        ),
        migrations.AddIndex(
            model_name="archiveditem",
            index=models.Index(fields=["key", "id"], name="archive_key_id"),
        ),
        migrations.AddIndex(
            model_name="archiveditem",
            index=models.Index(fields=["state", "id"], name="archive_state_id"),
        ),
    ]
