"""Schema version 4: reader studies, their queries, candidates, readers, responses, audit."""

from medviewer.study.tables import STUDY_SQL

VERSION = 4

SQL = STUDY_SQL
