"""Open a teaching package made on another machine: browse it and run its quiz, read-only.

A package (:mod:`medviewer.teaching.package`) carries ``teaching.json``: the
collection's de-identified teaching content (history, findings, diagnosis,
discussion, references, tags, labels) and the relative paths of its PNGs.
Nothing here writes into the package: a quiz over a package keeps its answers in
memory (:class:`PackageQuiz`), and every image path is resolved inside the
package folder, so a crafted ``teaching.json`` cannot point outside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medviewer.fileio import PathOutsideRootError, atomic_write_json, resolve_inside
from medviewer.teaching.errors import QuizError, TeachingError

FORMAT = "medviewer-teaching-1"


def write_teaching_json(out: Path, data: dict) -> Path:
    """Write ``teaching.json`` into a package folder (atomically)."""
    return atomic_write_json(Path(out) / "teaching.json", data, indent=1)


@dataclass(frozen=True)
class PackageImage:
    """An image of a package case: its PNG (absolute, inside the package) and caption lines."""

    png: Path
    caption: tuple[str, ...]


@dataclass(frozen=True)
class PackageCase:
    """A teaching case as the package holds it (already de-identified)."""

    number: int
    title: str
    modality: str
    labels: tuple[str, ...]
    tags: tuple[str, ...]
    history: str
    findings: str
    diagnosis: str
    discussion: str
    citations: str
    free_text: str
    images: tuple[PackageImage, ...]
    similar: tuple[PackageImage, ...]
    dissimilar: tuple[PackageImage, ...]


@dataclass(frozen=True)
class TeachingPackage:
    """An opened teaching package (read-only)."""

    folder: Path
    title: str
    description: str
    cases: tuple[PackageCase, ...]

    def search(self, text: str = "", tag: str = "", modality: str = "") -> list[PackageCase]:
        """Return the cases whose text, tag and modality match (case-insensitive)."""
        text, tag, modality = text.strip().lower(), tag.strip().lower(), modality.strip().lower()
        out = []
        for case in self.cases:
            blob = " ".join([case.title, case.history, case.findings, case.diagnosis,
                             case.discussion, case.citations, case.free_text,
                             *case.labels]).lower()
            if text and text not in blob:
                continue
            if tag and tag not in {t.lower() for t in case.tags}:
                continue
            if modality and case.modality.lower() != modality:
                continue
            out.append(case)
        return out


def open_package(folder: str | Path) -> TeachingPackage:
    """Open a teaching package folder.

    Raises
    ------
    TeachingError
        When the folder has no readable ``teaching.json`` of a known format, or an image
        of it is missing or lies outside the package.
    """
    folder = Path(folder)
    path = folder / "teaching.json"
    if not path.is_file():
        raise TeachingError("this folder is not a MedViewer teaching package", path=folder,
                            hint="choose the folder that holds index.html and teaching.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TeachingError(f"teaching.json cannot be read: {exc}", path=path,
                            hint="copy the package again") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TeachingError(f"unknown teaching package format {data.get('format')!r}"
                            if isinstance(data, dict) else "teaching.json is not an object",
                            path=path, hint="open it with the MedViewer version that made it")

    def images(entries) -> tuple[PackageImage, ...]:
        out = []
        for entry in entries or []:
            try:
                png = resolve_inside(folder, str(entry["png"]))
            except (KeyError, TypeError, PathOutsideRootError) as exc:
                raise TeachingError(f"an image entry is invalid: {exc}", path=path,
                                    hint="the package was altered; copy it again") from exc
            if not png.is_file():
                raise TeachingError(f"image {entry['png']} is missing", path=folder,
                                    hint="copy the whole package folder")
            out.append(PackageImage(png, tuple(str(c) for c in entry.get("caption", []))))
        return tuple(out)

    cases = []
    for raw in data.get("cases", []):
        cases.append(PackageCase(
            number=int(raw.get("number", len(cases) + 1)), title=str(raw.get("title", "")),
            modality=str(raw.get("modality", "")),
            labels=tuple(map(str, raw.get("labels", []))),
            tags=tuple(map(str, raw.get("tags", []))),
            **{k: str(raw.get(k, "")) for k in ("history", "findings", "diagnosis",
                                                "discussion", "citations", "free_text")},
            images=images(raw.get("images")), similar=images(raw.get("similar")),
            dissimilar=images(raw.get("dissimilar"))))
    return TeachingPackage(folder, str(data.get("title", "")), str(data.get("description", "")),
                           tuple(cases))


@dataclass
class PackageAnswer:
    """A learner's answer to a package case, with the case revealed."""

    case: PackageCase
    answer: str
    matched: bool
    correct: bool | None = None


@dataclass
class PackageQuiz:
    """An "unknown case" quiz over a package, answers kept in memory (the package stays as is).

    The order of calls is enforced as in :mod:`medviewer.teaching.quiz`: the diagnosis
    of a case is reachable only through :meth:`answer`, after the answer is kept.
    """

    package: TeachingPackage
    learner: str
    answers: dict[int, PackageAnswer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.learner.strip():
            raise QuizError("a quiz needs the learner's name or alias")
        if not self.package.cases:
            raise QuizError("this package has no teaching cases")

    def next_case(self) -> PackageCase | None:
        """Return the first unanswered case (show only its history and images), or None."""
        return next((c for c in self.package.cases if c.number not in self.answers), None)

    def answer(self, case: PackageCase, text: str) -> PackageAnswer:
        """Keep the learner's answer (final) and return the case revealed."""
        from medviewer.teaching.quiz import _matches

        text = text.strip()
        if not text:
            raise QuizError("an empty answer", hint="type a diagnosis, or 'pass'")
        if case.number in self.answers:
            raise QuizError(f"case {case.number} was answered already",
                            hint="answers are final once the diagnosis is shown")
        kept = PackageAnswer(case, text, _matches(text, case.diagnosis))
        self.answers[case.number] = kept
        return kept

    def mark(self, case: PackageCase, correct: bool) -> None:
        """Grade an answer."""
        if case.number not in self.answers:
            raise QuizError(f"case {case.number} has not been answered")
        self.answers[case.number].correct = bool(correct)

    def score(self) -> dict:
        """Return the learner's score."""
        answers = list(self.answers.values())
        return {"learner": self.learner, "questions": len(self.package.cases),
                "answered": len(answers), "matched": sum(a.matched for a in answers),
                "correct": sum(bool(a.correct) for a in answers),
                "graded": sum(a.correct is not None for a in answers)}
