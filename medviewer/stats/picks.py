"""The tidy picks table of a reader study: read, validate, subset and write it.

One row per (reader, query, candidate) with at least the columns
``reader, query, candidate, model_closest, picked``; other columns (study,
rank, distance, seconds, modality, ...) are ignored unless asked for as
grouping columns.  ``picked`` may be blank (or ``NA``) for a query the reader
skipped; a reader with no rows for a query has not read it.  Both are missing
ratings, kept apart so the report can count them.

An *item* is one (query, candidate) pair (see DESIGN.md, "Reader study").
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medviewer.stats.errors import PicksTableError

REQUIRED_COLUMNS = ("reader", "query", "candidate", "model_closest", "picked")

#: Code in :attr:`PicksTable.ratings` for a row whose ``picked`` is blank (a skip).
NOT_RATED = -1
#: Code in :attr:`PicksTable.ratings` for a reader with no row for the item.
NO_ROW = -2

_TRUE = frozenset({"1", "1.0", "true"})
_FALSE = frozenset({"0", "0.0", "false"})
# pandas writes NaN as an empty field and booleans as True/False; accept both.
_BLANK = frozenset({"", "na", "nan", "none", "null"})
_MAX_PROBLEMS = 20


@dataclass(frozen=True, eq=False)
class PicksTable:
    """Ratings of a reader study as arrays over items and readers.

    Items are ordered by query (``item_query`` never decreases), so per-query
    sums are contiguous slices.

    Attributes
    ----------
    readers : tuple of str
        Reader identifiers, in order of first appearance.
    queries : tuple of str
        Query identifiers, in order of first appearance.
    item_query : ndarray of int, shape (n_items,)
        Index into ``queries`` of each item's query.
    item_candidate : tuple of str
        Candidate identifier of each item.
    model : ndarray of int8, shape (n_items,)
        1 where the candidate is among the model's closest.
    ratings : ndarray of int8, shape (n_items, n_readers)
        1 picked, 0 not picked, :data:`NOT_RATED` skipped, :data:`NO_ROW` not read.
    groups : mapping of str to tuple of str
        Item-level values of the grouping columns that were loaded.
    source : str
        Where the table came from (a path), for messages.
    """

    readers: tuple[str, ...]
    queries: tuple[str, ...]
    item_query: np.ndarray
    item_candidate: tuple[str, ...]
    model: np.ndarray
    ratings: np.ndarray
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    @property
    def n_items(self) -> int:
        """Number of items (query, candidate pairs)."""
        return int(self.model.shape[0])

    @property
    def n_readers(self) -> int:
        """Number of readers."""
        return len(self.readers)

    @property
    def n_queries(self) -> int:
        """Number of queries."""
        return len(self.queries)

    @property
    def query_starts(self) -> np.ndarray:
        """Index of each query's first item (items of a query are contiguous)."""
        return np.flatnonzero(np.r_[True, np.diff(self.item_query) != 0])

    @property
    def rated(self) -> np.ndarray:
        """Boolean mask (n_items, n_readers) of the ratings that exist."""
        return self.ratings >= 0

    @property
    def picked(self) -> np.ndarray:
        """Boolean mask (n_items, n_readers) of the picks."""
        return self.ratings == 1

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, object]],
        *,
        group_columns: Sequence[str] = (),
        source: str = "",
    ) -> PicksTable:
        """Build and validate a table from mappings with the tidy columns.

        Parameters
        ----------
        rows : iterable of mapping
            Each with ``reader, query, candidate, model_closest, picked`` and
            the ``group_columns``; values are converted with ``str``.
        group_columns : sequence of str
            Extra columns to keep at the item level (for breakdowns).
        source : str
            Name used in error messages.

        Raises
        ------
        PicksTableError
            When a value is not 0/1, a row is duplicated, candidate sets or
            ``model_closest`` disagree between readers, or a column is missing.
        """
        wanted = (*REQUIRED_COLUMNS, *group_columns)

        def records() -> Iterator[tuple[int, list[str]]]:
            for number, row in enumerate(rows, start=1):
                missing = [name for name in wanted if name not in row]
                if missing:
                    raise PicksTableError(
                        f"row {number}: no {', '.join(missing)}",
                        path=source or None,
                        hint="every row needs " + ", ".join(wanted),
                        line=number,
                    )
                yield number, ["" if row[name] is None else str(row[name]) for name in wanted]

        return _build(records(), group_columns, source, where="row")

    def subset(self, item_mask: np.ndarray) -> PicksTable:
        """Return the table restricted to the items where ``item_mask`` is true.

        Queries left without items are dropped; every reader is kept.
        """
        item_mask = np.asarray(item_mask, dtype=bool)
        kept_queries, item_query = np.unique(self.item_query[item_mask], return_inverse=True)
        index = np.flatnonzero(item_mask)
        return PicksTable(
            readers=self.readers,
            queries=tuple(self.queries[q] for q in kept_queries),
            item_query=item_query.astype(np.intp),
            item_candidate=tuple(self.item_candidate[i] for i in index),
            model=self.model[item_mask],
            ratings=self.ratings[item_mask],
            groups={k: tuple(v[i] for i in index) for k, v in self.groups.items()},
            source=self.source,
        )

    def to_rows(self) -> Iterator[dict[str, str]]:
        """Yield the tidy rows (readers without a row for an item are left out)."""
        for i in range(self.n_items):
            query = self.queries[self.item_query[i]]
            extra = {k: v[i] for k, v in self.groups.items()}
            for r, reader in enumerate(self.readers):
                code = int(self.ratings[i, r])
                if code == NO_ROW:
                    continue
                yield {
                    "reader": reader,
                    "query": query,
                    "candidate": self.item_candidate[i],
                    "model_closest": str(int(self.model[i])),
                    "picked": "" if code == NOT_RATED else str(code),
                    **extra,
                }


def load_picks(path: str | Path, *, group_columns: Sequence[str] = ()) -> PicksTable:
    """Read and validate a tidy picks CSV.

    Parameters
    ----------
    path : str or Path
        CSV file with a header naming at least ``reader, query, candidate,
        model_closest, picked`` (any order, any case; other columns ignored).
    group_columns : sequence of str
        Columns to keep for breakdowns (e.g. ``modality``); each must hold one
        value per item.

    Returns
    -------
    PicksTable

    Raises
    ------
    PicksTableError
        Naming the file and the line of the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise PicksTableError(
            "no such file", path=path, hint="give the tidy picks CSV exported by the study"
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise PicksTableError(
                    "the file is empty", path=path, hint="expected a header line", line=1
                )
            positions = _column_positions(header, group_columns, path)
            width = max(positions) + 1

            def records() -> Iterator[tuple[int, list[str]]]:
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue  # blank lines, e.g. a trailing newline from a spreadsheet
                    if len(row) < width:
                        raise PicksTableError(
                            f"line {reader.line_num}: {len(row)} fields, the header has "
                            f"{len(header)}",
                            path=path,
                            hint="check for a truncated line or a missing delimiter",
                            line=reader.line_num,
                        )
                    yield reader.line_num, [row[p] for p in positions]

            return _build(records(), group_columns, str(path), where="line")
    except UnicodeDecodeError as exc:
        raise PicksTableError(
            "not UTF-8 text", path=path, hint="save the table as UTF-8 CSV"
        ) from exc
    except csv.Error as exc:
        raise PicksTableError(
            f"not a readable CSV file ({exc})", path=path, hint="save the table as plain CSV"
        ) from exc


def write_picks_csv(table: PicksTable, path: str | Path) -> Path:
    """Write the table in the tidy picks format that :func:`load_picks` reads back."""
    path = Path(path)
    columns = [*REQUIRED_COLUMNS, *table.groups]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table.to_rows())
    return path


def _column_positions(header: list[str], group_columns: Sequence[str], path: Path) -> list[int]:
    """Return the positions of the required then the grouping columns in ``header``."""
    names = [name.strip().lower() for name in header]
    if len(names) == 1 and ";" in names[0]:
        raise PicksTableError(
            "line 1: the header is one field with semicolons",
            path=path,
            hint="save the table as comma-separated CSV",
            line=1,
        )
    positions = []
    for wanted in (*REQUIRED_COLUMNS, *group_columns):
        key = wanted.strip().lower()
        found = [i for i, name in enumerate(names) if name == key]
        if not found:
            required = wanted in REQUIRED_COLUMNS
            raise PicksTableError(
                f"line 1: no column '{wanted}'",
                path=path,
                hint=(
                    "the tidy picks format needs " + ", ".join(REQUIRED_COLUMNS)
                    if required
                    else "columns are " + ", ".join(h.strip() for h in header)
                ),
                line=1,
            )
        if len(found) > 1:
            raise PicksTableError(
                f"line 1: column '{wanted}' appears {len(found)} times",
                path=path,
                hint="rename or drop the duplicate column",
                line=1,
            )
        positions.append(found[0])
    return positions


def _parse_flag(text: str, *, allow_blank: bool) -> int | None:
    """Return 1, 0, or ``None`` for a blank when allowed; raise ``ValueError`` otherwise."""
    value = text.strip().lower()
    if value in _TRUE:
        return 1
    if value in _FALSE:
        return 0
    if allow_blank and value in _BLANK:
        return None
    raise ValueError(text)


def _build(
    records: Iterable[tuple[int, list[str]]],
    group_columns: Sequence[str],
    source: str,
    *,
    where: str,
) -> PicksTable:
    """Validate parsed records ``(line, [reader, query, candidate, model, picked, *groups])``."""
    problems: list[tuple[int, str, str]] = []  # (line, message, hint)

    def problem(line: int, message: str, hint: str) -> None:
        problems.append((line, f"{where} {line}: {message}", hint))

    readers: dict[str, int] = {}
    queries: dict[str, int] = {}
    seen: dict[tuple[str, str, str], int] = {}
    items: dict[tuple[str, str], tuple[int, int, tuple[str, ...]]] = {}  # model, line, groups
    query_candidates: dict[str, dict[str, None]] = {}  # ordered union of candidates
    reader_sets: dict[str, dict[str, tuple[set[str], int]]] = {}  # query -> reader -> set, line
    rows: list[tuple[str, str, str, int]] = []

    for line, (reader, query, candidate, model_text, picked_text, *group_values) in records:
        if len(problems) >= _MAX_PROBLEMS:
            break
        reader, query, candidate = reader.strip(), query.strip(), candidate.strip()
        blank = [n for n, v in zip(REQUIRED_COLUMNS[:3], (reader, query, candidate)) if not v]
        if blank:
            problem(line, f"{', '.join(blank)} is empty", "every row names its reader, query "
                    "and candidate")
            continue
        try:
            model = _parse_flag(model_text, allow_blank=False)
        except ValueError:
            problem(line, f"model_closest is {model_text!r}, expected 0 or 1",
                    "model_closest is 1 for the model's closest candidates, else 0")
            continue
        try:
            picked = _parse_flag(picked_text, allow_blank=True)
        except ValueError:
            problem(line, f"picked is {picked_text!r}, expected 0 or 1 (blank for a skip)",
                    "picked is 1 when the reader chose the candidate, else 0")
            continue
        key = (reader, query, candidate)
        if key in seen:
            problem(line, f"reader {reader!r}, query {query!r}, candidate {candidate!r} "
                    f"repeats {where} {seen[key]}",
                    "keep one row per reader, query and candidate (merge or drop duplicates)")
            continue
        seen[key] = line
        groups = tuple(v.strip() for v in group_values)
        item = (query, candidate)
        if item in items:
            first_model, first_line, first_groups = items[item]
            if first_model != model:
                problem(line, f"model_closest is {model} for query {query!r}, candidate "
                        f"{candidate!r} but {first_model} on {where} {first_line}",
                        "the model's ranking is frozen per study; one value per item")
                continue
            for name, value, first in zip(group_columns, groups, first_groups):
                if value != first:
                    problem(line, f"{name} is {value!r} for query {query!r}, candidate "
                            f"{candidate!r} but {first!r} on {where} {first_line}",
                            f"{name} must have one value per item to group by it")
                    break
        else:
            items[item] = (model, line, groups)
        readers.setdefault(reader, len(readers))
        queries.setdefault(query, len(queries))
        query_candidates.setdefault(query, {})[candidate] = None
        per_reader = reader_sets.setdefault(query, {})
        if reader not in per_reader:
            per_reader[reader] = (set(), line)
        per_reader[reader][0].add(candidate)
        rows.append((reader, query, candidate, NOT_RATED if picked is None else picked))

    if not problems:
        _check_candidate_sets(reader_sets, problem)
    if not problems and not rows:
        raise PicksTableError("no rows", path=source or None,
                              hint="the table has a header but no picks", line=None)
    if problems:
        line, message, hint = problems[0]
        raise PicksTableError(message, path=source or None, hint=hint, line=line,
                              problems=[p[1] for p in problems])

    item_index: dict[tuple[str, str], int] = {}
    item_query, item_candidate = [], []
    for query, candidates in query_candidates.items():
        q = queries[query]
        for candidate in candidates:
            item_index[(query, candidate)] = len(item_candidate)
            item_query.append(q)
            item_candidate.append(candidate)
    model = np.empty(len(item_candidate), dtype=np.int8)
    group_values = {name: [""] * len(item_candidate) for name in group_columns}
    for item, (value, _line, groups) in items.items():
        i = item_index[item]
        model[i] = value
        for name, text in zip(group_columns, groups):
            group_values[name][i] = text
    ratings = np.full((len(item_candidate), len(readers)), NO_ROW, dtype=np.int8)
    row_item = np.fromiter((item_index[(q, c)] for _r, q, c, _p in rows), np.intp, len(rows))
    row_reader = np.fromiter((readers[r] for r, _q, _c, _p in rows), np.intp, len(rows))
    ratings[row_item, row_reader] = np.fromiter((p for *_x, p in rows), np.int8, len(rows))
    return PicksTable(
        readers=tuple(readers),
        queries=tuple(queries),
        item_query=np.asarray(item_query, dtype=np.intp),
        item_candidate=tuple(item_candidate),
        model=model,
        ratings=ratings,
        groups={name: tuple(values) for name, values in group_values.items()},
        source=source,
    )


def _check_candidate_sets(reader_sets, problem) -> None:
    """Report queries whose candidate sets differ between readers."""
    for query, per_reader in reader_sets.items():
        if len(per_reader) < 2:
            continue
        sets = Counter(frozenset(s) for s, _line in per_reader.values())
        if len(sets) == 1:
            continue
        # Compare with the set most readers saw, so the message blames the odd one out.
        reference = sets.most_common(1)[0][0]
        ref_reader = next(r for r, (s, _l) in per_reader.items() if s == reference)
        for reader, (candidates, line) in per_reader.items():
            if candidates == reference:
                continue
            lacking = sorted(reference - candidates)
            extra = sorted(candidates - reference)
            parts = []
            if lacking:
                parts.append("lacks " + ", ".join(map(repr, lacking[:5])))
            if extra:
                parts.append("has extra " + ", ".join(map(repr, extra[:5])))
            problem(line, f"query {query!r}: reader {reader!r} {' and '.join(parts)} compared "
                    f"with reader {ref_reader!r}",
                    "every reader who reads a query rates the same candidates (one row each, "
                    "picked blank for a skip)")
