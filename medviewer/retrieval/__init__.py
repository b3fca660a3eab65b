"""Similar-case retrieval: FAISS indexes of a library's ViT embeddings, search, evaluation.

No Qt, no torch; ``faiss``, ``scipy`` and ``sklearn`` are imported inside the
functions that need them.  The orchestration a panel or the CLI calls is
:mod:`medviewer.services.retrieval`; this package holds the parts:

- :mod:`~medviewer.retrieval.catalog` - the library's cases as retrieval sees them;
- :mod:`~medviewer.retrieval.embedders` - model bundle or raw-pixel vectors;
- :mod:`~medviewer.retrieval.ann` - exact / HNSW / IVF structures, recall against exact;
- :mod:`~medviewer.retrieval.index_store` - the index folder beside the library;
- :mod:`~medviewer.retrieval.index` - status, incremental build, loading;
- :mod:`~medviewer.retrieval.filters` - filters as a pre-selection of candidates;
- :mod:`~medviewer.retrieval.search` - :class:`Searcher`, results, embedding map;
- :mod:`~medviewer.retrieval.vote`, :mod:`~medviewer.retrieval.marks`,
  :mod:`~medviewer.retrieval.projection`;
- :mod:`~medviewer.retrieval.metrics`, :mod:`~medviewer.retrieval.split`,
  :mod:`~medviewer.retrieval.evaluate` - the paper's evaluation protocol.
"""

from medviewer.retrieval.ann import AnnParams, RecallReport
from medviewer.retrieval.catalog import Catalog, CaseInfo, read_catalog
from medviewer.retrieval.embedders import Embedder, PixelEmbedder, RunnerEmbedder
from medviewer.retrieval.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    IndexNotReadyError,
    IndexStaleError,
    ProjectionUnavailableError,
    QueryError,
    RetrievalError,
    UnknownTaskError,
)
from medviewer.retrieval.evaluate import TASKS, RetrievalEvaluation
from medviewer.retrieval.filters import QueryContext, SearchFilter
from medviewer.retrieval.index import BuildReport, CaseIndex, IndexStatus
from medviewer.retrieval.marks import RelevanceMark
from medviewer.retrieval.projection import available_methods
from medviewer.retrieval.search import EmbeddingMap, Hit, Region, SearchResult, Searcher
from medviewer.retrieval.vote import LabelVote, label_vote

__all__ = [
    "AnnParams",
    "BuildReport",
    "CaseIndex",
    "CaseInfo",
    "Catalog",
    "Embedder",
    "EmbeddingMap",
    "Hit",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexNotReadyError",
    "IndexStaleError",
    "IndexStatus",
    "LabelVote",
    "PixelEmbedder",
    "ProjectionUnavailableError",
    "QueryContext",
    "QueryError",
    "RecallReport",
    "Region",
    "RelevanceMark",
    "RetrievalError",
    "RetrievalEvaluation",
    "RunnerEmbedder",
    "SearchFilter",
    "SearchResult",
    "Searcher",
    "TASKS",
    "UnknownTaskError",
    "available_methods",
    "label_vote",
    "read_catalog",
]
