"""The SQLite case library: schema migrations, hierarchy, geometry, cases, labels, search."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

import helpers_dicom as h
from medviewer.dicom.geometry import GeometryWarning, SeriesGeometry
from medviewer.dicom.scan import scan
from medviewer.dicom.sources import FileRef
from medviewer.errors import LibraryError, SchemaVersionError
from medviewer.store import Library, schema


def headers(series: h.SeriesFiles):
    return [scan(FileRef.for_path(p)) for p in series.paths]


def add(library: Library, hdrs) -> list[tuple[int, int]]:
    with library.transaction():
        return [library.upsert_instance(x) for x in hdrs]


# -- the file and its schema -----------------------------------------------------------------

def test_new_library_has_the_latest_schema_and_pragmas(tmp_path):
    with Library(tmp_path / "sub" / "dir" / "lib.sqlite") as library:
        assert library.path.is_file()
        assert library.schema_version == schema.LATEST_VERSION
        conn = library.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"patients", "studies", "series", "instances", "cases", "labels",
                "import_runs", "import_skips"} <= tables


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path, ct_series):
    path = tmp_path / "lib.sqlite"
    with Library(path) as library:
        add(library, headers(ct_series))
    conn = sqlite3.connect(path)
    assert schema.migrate(conn, str(path)) == schema.LATEST_VERSION  # version found: nothing to do
    conn.close()
    with Library(path) as library:
        assert library.counts()["instances"] == len(ct_series.paths)


def test_library_from_a_newer_medviewer_is_refused(tmp_path):
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError) as info:
        Library(path)
    assert isinstance(info.value, LibraryError)
    assert info.value.path == str(path.resolve())
    assert "update" in info.value.hint.lower()
    # Refusing must not have touched the file.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST_VERSION + 1
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()


def test_a_file_that_is_not_a_library_gives_a_library_error(tmp_path):
    path = h.write_junk(tmp_path / "notes.sqlite", size=4096)
    with pytest.raises(LibraryError) as info:
        Library(path)
    assert info.value.path == str(path.resolve()) and info.value.hint


def test_a_failing_migration_rolls_back_completely(tmp_path, monkeypatch):
    path = tmp_path / "lib.sqlite"
    Library(path).close()
    broken = (schema.LATEST_VERSION + 1,
              "CREATE TABLE added_by_v2 (x INTEGER); ALTER TABLE nowhere ADD COLUMN y TEXT")
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + [broken])
    monkeypatch.setattr(schema, "LATEST_VERSION", broken[0])
    with pytest.raises(LibraryError):
        Library(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == broken[0] - 1
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='added_by_v2'"
                        ).fetchone()[0] == 0
    conn.close()


def test_a_new_migration_is_applied_once_in_order(tmp_path, monkeypatch):
    path = tmp_path / "lib.sqlite"
    Library(path).close()
    step = (schema.LATEST_VERSION + 1, "ALTER TABLE series ADD COLUMN colour TEXT")
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + [step])
    monkeypatch.setattr(schema, "LATEST_VERSION", step[0])
    with Library(path) as library:
        assert library.schema_version == step[0]
        columns = [r[1] for r in library.conn.execute("PRAGMA table_info(series)")]
        assert columns.count("colour") == 1
    with Library(path) as library:  # a second open must not re-run it (it would fail)
        assert library.schema_version == step[0]


# -- hierarchy -------------------------------------------------------------------------------

def test_upsert_builds_patient_study_series_once(tmp_library, ct_series):
    ids = add(tmp_library, headers(ct_series))
    assert len({series for _, series in ids}) == 1
    assert tmp_library.counts() == {"patients": 1, "studies": 1, "series": 1,
                                    "instances": len(ct_series.paths), "cases": 0, "labels": 0}
    [patient] = tmp_library.patients()
    assert (patient.patient_id, patient.name, patient.birth_date, patient.sex, patient.studies) \
        == ("PAT-CT", "Doe^Jane", "19700101", "F", 1)
    [study] = tmp_library.studies(patient.id)
    assert study.study_uid == ct_series.study_uid and study.series == 1
    [series] = tmp_library.series(study.id)
    assert series.series_uid == ct_series.series_uid and series.modality == "CT"
    assert series.instances == len(ct_series.paths) and series.frames == len(ct_series.paths)


def test_upserting_the_same_location_updates_in_place(tmp_library, ct_series):
    first = headers(ct_series)[0]
    (instance, _), = add(tmp_library, [first])
    changed = dataclasses.replace(first, ref=dataclasses.replace(first.ref, size=1, mtime=2.0),
                                  rows=99)
    (again, _), = add(tmp_library, [changed])
    assert again == instance
    assert tmp_library.counts()["instances"] == 1
    assert tmp_library.known_files() == {first.ref.display: (1, 2.0)}
    assert tmp_library.instance_by_location(first.ref.display).rows == 99


def test_patients_without_id_are_told_apart_by_name_and_birth_date(tmp_library, ct_series):
    base = headers(ct_series)[0]

    def variant(i, name, birth):
        return dataclasses.replace(base, patient_id="", patient_name=name,
                                   patient_birth_date=birth, study_uid=f"1.2.{i}",
                                   series_uid=f"1.3.{i}",
                                   ref=dataclasses.replace(base.ref, path=f"/x/{i}"))

    add(tmp_library, [variant(1, "A^B", "1990"), variant(2, "A^B", "1990"),
                      variant(3, "A^B", "1991"), variant(4, "", "")])
    assert len(tmp_library.patients()) == 3


def test_series_geometry_orders_instances_and_keeps_warnings(tmp_library, ct_series):
    hdrs = headers(ct_series)[::-1]  # stored in reverse order on purpose
    ids = add(tmp_library, hdrs)
    series_id = ids[0][1]
    order = sorted(range(len(hdrs)), key=lambda i: hdrs[i].image_position[2])
    warning = GeometryWarning("uneven spacing", "Slice spacing varies.")
    geometry = SeriesGeometry(order=order, spacing=2.5, tilt_degrees=0.25, warnings=[warning])
    with tmp_library.transaction():
        tmp_library.set_series_geometry(series_id, geometry, [i for i, _ in ids])
    rows = tmp_library.instances(series_id)
    assert [r.slice_index for r in rows] == list(range(len(hdrs)))
    assert [r.location for r in rows] == [str(p) for p in ct_series.paths]
    assert rows[0].ref == FileRef(path=str(ct_series.paths[0]))
    assert rows[0].pixel_spacing == (0.7, 0.7)
    [series] = tmp_library.series(series_id=series_id)
    assert (series.spacing, series.tilt_degrees, series.sorted_by) == (2.5, 0.25, "position")
    assert series.warnings == [warning]


# -- cases, labels, removal ------------------------------------------------------------------

def test_cases_and_labels_by_source(tmp_library, ct_series):
    ids = add(tmp_library, headers(ct_series)[:2])
    with tmp_library.transaction():
        case = tmp_library.ensure_case(ids[0][0])
        assert tmp_library.ensure_case(ids[0][0]) == case  # idempotent
        other = tmp_library.ensure_case(ids[1][0], frame=0)
        tmp_library.set_labels(case, ["Nodule", "Emphysema"], "dataset", "table.csv")
        tmp_library.set_labels(case, ["Nodule"], "user")
        tmp_library.set_labels(case, ["Mass"], "model", "vit-b", values=[0.87])
        tmp_library.set_labels(case, ["Emphysema"], "dataset", "table.csv")  # replaces
        tmp_library.set_case_mask(other, "/masks/1.png")
    assert tmp_library.labels(case) == [("Emphysema", 1.0, "dataset", "table.csv"),
                                        ("Mass", 0.87, "model", "vit-b"),
                                        ("Nodule", 1.0, "user", "")]
    by_id = {c.id: c for c in tmp_library.cases()}
    assert by_id[case].labels == ("Emphysema", "Nodule")  # model labels are not ground truth
    assert by_id[other].labels == () and by_id[other].mask_path == "/masks/1.png"
    assert by_id[case].patient_id == "PAT-CT" and by_id[case].modality == "CT"
    assert [c.id for c in tmp_library.cases(label="Nodule")] == [case]
    assert tmp_library.cases(label="Mass") == []
    assert tmp_library.series_label_names(ids[0][1]) == ["Emphysema", "Nodule"]
    with pytest.raises(ValueError, match="source"):
        tmp_library.set_labels(case, ["X"], "radiologist")


def test_removing_instances_cascades_and_prunes(tmp_library, ct_series):
    hdrs = headers(ct_series)
    ids = add(tmp_library, hdrs)
    with tmp_library.transaction():
        case = tmp_library.ensure_case(ids[0][0])
        tmp_library.set_labels(case, ["A"], "user")
        removed = tmp_library.remove_locations([x.ref.display for x in hdrs[:1]] + ["/nope"])
    assert removed == 1
    assert tmp_library.counts()["cases"] == 0 and tmp_library.counts()["labels"] == 0
    with tmp_library.transaction():
        tmp_library.remove_locations([x.ref.display for x in hdrs[1:]])
        tmp_library.prune_empty()
    assert tmp_library.counts() == dict.fromkeys(
        ["patients", "studies", "series", "instances", "cases", "labels"], 0)


def test_transaction_rolls_back_on_error(tmp_library, ct_series):
    with pytest.raises(RuntimeError), tmp_library.transaction():
        tmp_library.upsert_instance(headers(ct_series)[0])
        raise RuntimeError("boom")
    assert tmp_library.counts()["instances"] == 0
    add(tmp_library, headers(ct_series)[:1])  # the connection is usable afterwards
    assert tmp_library.counts()["instances"] == 1


def test_search_patients(tmp_library, tmp_path):
    a = h.write_ct_series(tmp_path / "a", n=2, seed=1, patient_id="P-ALPHA",
                          series_description="CHEST HRCT")
    b = h.write_ct_series(tmp_path / "b", n=2, seed=2, patient_id="P-BETA",
                          series_description="HEAD")
    ids_a = add(tmp_library, headers(a))
    add(tmp_library, headers(b))
    with tmp_library.transaction():
        tmp_library.set_labels(tmp_library.ensure_case(ids_a[0][0]), ["Cardiomegaly"], "dataset")
    ids = lambda term: [p.patient_id for p in tmp_library.patients(term)]  # noqa: E731
    assert ids("") == ["P-ALPHA", "P-BETA"]
    assert ids("beta") == ["P-BETA"]
    assert ids("hrct") == ["P-ALPHA"]
    assert ids("cardio") == ["P-ALPHA"]
    assert ids("CT") == ["P-ALPHA", "P-BETA"]  # modality
    assert ids("nothing-like-this") == []


def test_import_runs_and_their_skips(tmp_library):
    assert tmp_library.last_import_skips() == []
    tmp_library.record_import(["/a"], "2024-01-01T00:00:00+00:00", 3, 0,
                              [("/a/x", "not DICOM", "d1")])
    tmp_library.record_import(["/b"], "2024-01-02T00:00:00+00:00", 0, 3,
                              [("/b/z", "truncated", "d2"), ("/b/y", "no pixel data", "")])
    assert tmp_library.last_import_skips() == [("/b/y", "no pixel data", ""),
                                               ("/b/z", "truncated", "d2")]
    row = tmp_library.conn.execute("SELECT imported, unchanged, skipped, finished_at FROM "
                                   "import_runs ORDER BY id DESC").fetchone()
    assert tuple(row)[:3] == (0, 3, 2) and row[3]


def test_schema_migrations_are_numbered_without_gaps():
    """A gap would let a later-added migration be skipped by libraries already past it."""
    from medviewer.store.schema import MIGRATIONS

    assert [v for v, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_migrations_are_frozen_text_that_imports_nothing():
    """A migration that imported live SQL would change silently with the code it imports."""
    import ast
    from pathlib import Path

    from medviewer.store import migrations

    for path in sorted(Path(migrations.__path__[0]).glob("v*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert imports == [], f"{path.name} imports code; a migration must be literal SQL"
        sql = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                   and n.targets[0].id == "SQL")
        assert isinstance(sql, ast.Constant) and isinstance(sql.value, str), path.name


def test_the_reading_package_schema_matches_the_library_migrations(tmp_path):
    """Reading packages are made from STUDY_SQL; the library's study tables from migrations.

    Changing STUDY_SQL therefore needs a new library migration: this test says so.
    """
    from medviewer.study.tables import STUDY_SQL

    def describe(conn):
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'study_%' "
            "OR name = 'reader_studies') ORDER BY name")]
        return {t: [tuple(c[1:]) for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}

    package = sqlite3.connect(":memory:")
    for statement in STUDY_SQL.split(";"):
        if statement.strip():
            package.execute(statement)
    with Library(tmp_path / "lib.sqlite") as library:
        assert describe(library.conn) == describe(package)
