"""Teaching files: collections of cases with notes, key images and exemplars; quizzes; export.

- :class:`TeachingStore` - collections, items, key images, exemplars, tags, notes;
- :func:`search_cases` - by label, tag, note text, modality, study date;
- :mod:`medviewer.teaching.quiz` - the "unknown case" quiz;
- :func:`export_collection` - the de-identified teaching package (HTML, PNG, DICOM, KOS).

The application-facing API is :mod:`medviewer.services.teaching`.
"""

from medviewer.teaching.errors import (
    CaseNotFoundError,
    CollectionNotFoundError,
    QuizError,
    TeachingError,
)
from medviewer.teaching.kos import FOR_TEACHING, KOS_SOP_CLASS, ImageReference, build_kos
from medviewer.teaching.models import (
    CaseHit,
    Collection,
    CollectionItem,
    KeyImage,
    QuizFeedback,
    QuizQuestion,
    QuizResult,
    QuizSession,
    TeachingNote,
)
from medviewer.teaching.package import (
    ExportedCase,
    ExportedImage,
    TeachingExport,
    export_collection,
)
from medviewer.teaching.search import search_cases
from medviewer.teaching.store import TeachingStore

__all__ = [
    "FOR_TEACHING",
    "KOS_SOP_CLASS",
    "CaseHit",
    "CaseNotFoundError",
    "Collection",
    "CollectionItem",
    "CollectionNotFoundError",
    "ExportedCase",
    "ExportedImage",
    "ImageReference",
    "KeyImage",
    "QuizError",
    "QuizFeedback",
    "QuizQuestion",
    "QuizResult",
    "QuizSession",
    "TeachingError",
    "TeachingExport",
    "TeachingNote",
    "TeachingStore",
    "build_kos",
    "export_collection",
    "search_cases",
]
