"""A DPU has at most one assignment at any instant, enforced by the database itself.

Django has no portable overlap constraint, so each backend gets its own: an exclusion constraint over the
[valid_from, valid_to) range on PostgreSQL (range types have GiST support built in, no extension needed), and
triggers on SQLite.
"""

from django.db import migrations

MESSAGE = "assignment_no_overlap: a DPU has at most one assignment at any instant"

SQLITE_OVERLAP = """
    EXISTS (SELECT 1 FROM dpu_dpuassignment a
            WHERE a.dpu_id = NEW.dpu_id AND a.id IS NOT NEW.id
              AND (a.valid_to IS NULL OR a.valid_to > NEW.valid_from)
              AND (NEW.valid_to IS NULL OR NEW.valid_to > a.valid_from))
"""

FORWARD = {
    "postgresql": [
        "ALTER TABLE dpu_dpuassignment ADD CONSTRAINT assignment_no_overlap EXCLUDE USING gist "
        "(int8range(dpu_id, dpu_id, '[]') WITH =, tstzrange(valid_from, valid_to) WITH &&)",
    ],
    "sqlite": [
        f"CREATE TRIGGER assignment_no_overlap_insert BEFORE INSERT ON dpu_dpuassignment WHEN {SQLITE_OVERLAP} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
        f"CREATE TRIGGER assignment_no_overlap_update BEFORE UPDATE ON dpu_dpuassignment WHEN {SQLITE_OVERLAP} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    ],
}

BACKWARD = {
    "postgresql": ["ALTER TABLE dpu_dpuassignment DROP CONSTRAINT assignment_no_overlap"],
    "sqlite": [
        "DROP TRIGGER assignment_no_overlap_insert",
        "DROP TRIGGER assignment_no_overlap_update",
    ],
}


def _run(statements):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("dpu", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
