"""Images for the reading screen: from the library (decoded, cached) or from a package."""

from __future__ import annotations

from pathlib import Path

from medviewer.dicom.pixels import DecodedImage
from medviewer.dicom.sources import FileRef
from medviewer.services.image_cache import ImageCache
from medviewer.store.library import Library


class LibraryCaseImages:
    """Load a case's image (and frame) from a library; call from worker threads."""

    def __init__(self, library_path: str | Path, cache: ImageCache | None = None) -> None:
        self.library_path = str(library_path)
        self.cache = cache or ImageCache()

    def __call__(self, case_id: int) -> tuple[DecodedImage, int]:
        with Library(self.library_path) as library:
            row = library.case_location(case_id)
        if row is None:
            raise KeyError(f"case {case_id} is not in the library")
        return self.cache.get(FileRef.from_display(row[0])), int(row[1])


class PackageCaseImages:
    """Load a case's image from a reading package (one frame per case)."""

    def __init__(self, package: str | Path) -> None:
        self.package = Path(package)

    def __call__(self, case_id: int) -> tuple[DecodedImage, int]:
        from medviewer.study.package import package_image

        return package_image(self.package, case_id), 0
