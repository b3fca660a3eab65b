"""Schema version 1: patients, studies, series, instances, cases, labels, import runs."""

VERSION = 1

SQL = """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE patients (
        id INTEGER PRIMARY KEY,
        patient_key TEXT NOT NULL UNIQUE,
        patient_id TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        birth_date TEXT NOT NULL DEFAULT '',
        sex TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        patient_ref INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        study_uid TEXT NOT NULL UNIQUE,
        study_date TEXT NOT NULL DEFAULT '',
        study_time TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        accession TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX studies_patient ON studies(patient_ref);
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        study_ref INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
        series_uid TEXT NOT NULL UNIQUE,
        modality TEXT NOT NULL DEFAULT '',
        series_number INTEGER,
        description TEXT NOT NULL DEFAULT '',
        body_part TEXT NOT NULL DEFAULT '',
        spacing REAL,
        tilt_degrees REAL,
        sorted_by TEXT NOT NULL DEFAULT '',
        warnings TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX series_study ON series(study_ref);
    CREATE TABLE instances (
        id INTEGER PRIMARY KEY,
        series_ref INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
        location TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        member TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL CHECK (kind IN ('dicom', 'raster')),
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        sop_uid TEXT NOT NULL,
        sop_class TEXT NOT NULL DEFAULT '',
        transfer_syntax TEXT NOT NULL DEFAULT '',
        instance_number INTEGER,
        rows INTEGER NOT NULL,
        columns INTEGER NOT NULL,
        frames INTEGER NOT NULL DEFAULT 1,
        samples INTEGER NOT NULL DEFAULT 1,
        photometric TEXT NOT NULL DEFAULT '',
        spacing_row REAL,
        spacing_col REAL,
        slice_thickness REAL,
        position TEXT,
        orientation TEXT,
        slice_index INTEGER,
        burned_in TEXT NOT NULL DEFAULT '',
        imported_at TEXT NOT NULL
    );
    CREATE INDEX instances_series ON instances(series_ref);
    CREATE INDEX instances_sop ON instances(sop_uid);
    CREATE TABLE cases (
        id INTEGER PRIMARY KEY,
        instance_ref INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        frame INTEGER NOT NULL DEFAULT 0,
        mask_path TEXT NOT NULL DEFAULT '',
        UNIQUE (instance_ref, frame)
    );
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY,
        case_ref INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value REAL NOT NULL DEFAULT 1.0,
        source TEXT NOT NULL CHECK (source IN ('dataset', 'user', 'model')),
        source_detail TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        UNIQUE (case_ref, name, source, source_detail)
    );
    CREATE INDEX labels_case ON labels(case_ref);
    CREATE INDEX labels_name ON labels(name);
    CREATE TABLE import_runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        inputs TEXT NOT NULL,
        imported INTEGER NOT NULL DEFAULT 0,
        unchanged INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE import_skips (
        run_ref INTEGER NOT NULL REFERENCES import_runs(id) ON DELETE CASCADE,
        location TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    """
