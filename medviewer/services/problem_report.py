"""Collect a problem report (the log and the environment) that never carries patient data.

"Help > Report a problem" saves a ``.zip`` the user attaches to a message.  It holds four text
files and nothing else: ``README.txt`` (what is and is not inside), ``environment.json``
(versions of MedViewer, Python, the system and the libraries, the ONNX Runtime providers),
``log.txt`` (the end of the log, masked) and ``note.txt`` (what the user typed, masked the same
way).  No images, pixel data, DICOM headers, library database or settings are read into it.

Logs should not contain patient data, but they hold file paths and UIDs, and a bug elsewhere may
log a name.  So every text in the report (log, note, and the strings of the environment) goes
through :class:`Redactor`, whose rules apply in this order:

1. **DICOM attributes.** The rest of a line after an identifying tag, ``(0010,xxxx)`` (the whole
   patient group), ``(0008,0050)`` Accession Number, ``(0008,0080/0081)`` institution,
   ``(0008,0090)``, ``(0008,1048/1050/1060/1070)`` physicians and operators,
   ``(0008,0020-0023)`` dates and ``(0020,0010)`` Study ID, becomes ``[redacted]``; so does the
   value after a keyword such as ``PatientName=``, ``'PatientID': ...``, ``patient_id=`` or
   ``AccessionNumber:``.
2. **Absolute paths** (POSIX, ``~/``, ``C:\\``, ``\\\\server``).  Paths of code (the Python
   standard library, site-packages, the ``medviewer`` package, a packaged app's folder) are
   kept after a label (``<site-packages>/pydicom/filereader.py``), so tracebacks stay useful;
   system folders (``/usr``, ``/lib``, ``/etc``, ``/proc``, ``/sys``, ``/dev``, ``/System``,
   ``C:\\Windows``) are kept as they are.  Any other path keeps its root, ``~`` for the user's
   home folder, its depth and the extension of its last part, and loses every name:
   ``/home/ann/Studies/DOE_JOHN/IM0001.dcm`` becomes ``~/…/…/….dcm``.  Folder names may contain
   single spaces (up to five words); a file name ends at the first space.  Relative paths are
   not recognised as paths (rules 3-5 still apply to them).
3. **E-mail addresses** become ``[email]``.
4. **DICOM UIDs**: digits and dots, starting ``1.`` or ``2.``, at least three parts and ten
   characters, become ``[uid]``; UIDs under the DICOM standard's root ``1.2.840.10008.``
   (transfer syntaxes, SOP classes) are kept, since they say what kind of file failed.
5. **Identifiers from the open library** (when its path is given; read-only): every patient
   name, patient ID, birth date (``19570312``, ``1957-03-12``, ``1957.03.12``,
   ``12.03.1957``), accession number, and study, series or SOP instance UID that rule 4 would
   not catch, becomes ``[redacted]``, case-insensitively, as a whole word.  Names are also split
   into their DICOM components (``DOE^JOHN^M`` also gives ``DOE`` and ``JOHN``), so ``JOHN DOE``,
   ``Doe, John`` and ``DOE_JOHN`` are caught; components shorter than three characters (two for
   non-Latin scripts) are left alone, as are IDs shorter than three.
6. **DICOM person names** not in the library (a PACS query result, say): any word joined by
   ``^`` and starting with a letter becomes ``[name]``.

What it cannot catch: a name, ID or date of a patient who is not in the given library, written
in a form other than a DICOM person name or an attribute of rule 1.  That is why the dialog
shows exactly what will be saved before anything is written.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import platform
import re
import sqlite3
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medviewer.fileio import atomic_write_bytes
from medviewer.store.identifiers import iter_identifiers, open_read_only

REDACTED = "[redacted]"
MAX_LOG_CHARS = 2_000_000
# Distributions whose versions go into environment.json (first found of each group).
PACKAGES = (
    ("numpy",), ("pydicom",), ("onnxruntime-gpu", "onnxruntime"), ("faiss-cpu", "faiss-gpu"),
    ("pyqtgraph",), ("pynetdicom",), ("platformdirs",), ("scipy",), ("scikit-learn",),
    ("pillow",), ("pylibjpeg",), ("pylibjpeg-libjpeg",), ("pylibjpeg-openjpeg",),
    ("pylibjpeg-rle",), ("pyjpegls",),
)
QT_PACKAGES = ("PySide6-Essentials", "PySide6", "shiboken6")

# -- rule 1: identifying DICOM attributes ----------------------------------------------------
_TAG_ELEMENTS = {
    "0008": {"0020", "0021", "0022", "0023", "0050", "0080", "0081", "0090", "0092", "0094",
             "1048", "1050", "1060", "1070"},
    "0020": {"0010"},
    "0038": {"0010"},
}
_TAG_RE = re.compile(r"\((0010|0008|0020|0038),([0-9A-Fa-f]{4})\)([^\n]*)")
# The same attributes in DICOM JSON (DICOMweb): "00100010": {"vr": "PN", "Value": [...]}.
_JSON_TAG_RE = re.compile(
    r"([\"'])(0010[0-9A-Fa-f]{4}|0008(?:002[0-3]|0050|008[01]|009[024]|1048|1050|1060|1070)"
    r"|00200010|00380010)\1\s*:\s*"
    r"(?:\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}|\[[^\]]*\]|\"[^\"]*\"|'[^']*')")
_KEYWORDS = (r"patient'?s?[ _]?(?:name|id|birth[ _]?date|address|telephone[ _]?numbers)"
             r"|other[ _]?patient[ _]?(?:ids|names)|patient[ _]?mother[ _]?birth[ _]?name"
             r"|accession[ _]?(?:number)?|referring[ _]?physician'?s?[ _]?name"
             r"|institution[ _]?name|birth[ _]?date|studyid")
_KEYWORD_RE = re.compile(
    rf"(?<![\w])({_KEYWORDS})(['\"]?\s*[:=]\s*)(?:(['\"])[^'\"\n]*\3|[^\s'\",;)}}\]&]+)",
    re.IGNORECASE)

# -- rule 2: absolute paths ------------------------------------------------------------------
_DELIMS = r"\s/\\'\"`<>|:;=&"
_SEG = rf"[^{_DELIMS}]+"
# A last part with spaces counts only when it ends in an extension: "/a/IM 1.dcm".
_SEG_EXT = (rf"[^{_DELIMS}]*\.[A-Za-z][A-Za-z0-9]{{0,7}}"
            rf"(?=[.,!?)\]}}]*(?:[{_DELIMS}]|$))")
_PATH_RE = re.compile(rf"""
    (?P<root>
        (?<![\w.])[A-Za-z]:[\\/]              # C:\ or C:/
      | (?<![\w\\/])\\\\(?=\w)                # \\server\share
      | (?<![\w.~/\\])~[\\/]                  # ~/
      | (?<![\w.~/\\:\-])/(?=[^\s/])          # /
    )
    (?P<rest>(?:{_SEG}(?:\ {_SEG}){{0,4}}[\\/]+)*(?:(?:{_SEG}\ ){{1,4}}{_SEG_EXT}|{_SEG})?)
""", re.VERBOSE)
_EXTENSION_RE = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
_TRAILING_PUNCTUATION = ".,!?)]}"
_SYSTEM_ROOTS = ("/usr/", "/lib/", "/lib64/", "/etc/", "/proc/", "/sys/", "/dev/", "/system/",
                 "c:/windows/")

# -- rules 3-6 ---------------------------------------------------------------------------------
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Letters may touch a UID ("series_1.2.3..."), digits and dots may not.
_UID_RE = re.compile(r"(?<![\d.])[12]\.\d+(?:\.\d+)+")
_UID_FULL_RE = re.compile(r"[12]\.\d+(?:\.\d+)+")
_DICOM_ROOT = "1.2.840.10008."
_MIN_UID_CHARS = 10
# A "run": text between delimiters, the unit looked up among the library's identifiers.
_RUN_RE = re.compile(r"[^\s,;:()\[\]{}<>\"'`=|/\\&?!*]+")
_RUN_DELIMITERS = re.compile(r"[\s,;:()\[\]{}<>\"'`=|/\\&?!*]")
_WORD_RE = re.compile(r"\w+")
_PART_SPLIT = re.compile(r"([\W_]+)")
_NAME_SPLIT = re.compile(r"[\^=\s,]+")


def _norm(path: str) -> str:
    """Return a path for prefix comparisons: forward slashes, case-folded, no trailing slash."""
    return path.replace("\\", "/").rstrip("/").casefold()


def _code_prefixes() -> list[tuple[str, str]]:
    """Return (folder, label) for folders holding code only, longest first."""
    import sysconfig

    import medviewer

    found: list[tuple[str, str]] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        found.append((meipass, "<app>"))
    paths = sysconfig.get_paths()
    for key in ("purelib", "platlib"):
        if paths.get(key):
            found.append((paths[key], "<site-packages>"))
    for key in ("stdlib", "platstdlib"):
        if paths.get(key):
            found.append((paths[key], "<python>"))
    # The package folder only, never its parent: a checkout's parent may hold the user's data.
    found.append((str(Path(medviewer.__file__).resolve().parent), "<medviewer>"))
    found = [(_norm(folder), label) for folder, label in found if folder]
    return sorted(set(found), key=lambda item: -len(item[0]))


def _birth_date_forms(value: str) -> list[str]:
    """Return the spellings of a DICOM DA birth date that a log might contain."""
    value = value.strip()
    if not re.fullmatch(r"\d{8}", value):
        return [value] if len(value) >= 6 else []
    y, m, d = value[:4], value[4:6], value[6:]
    return [value, f"{y}-{m}-{d}", f"{y}.{m}.{d}", f"{d}.{m}.{y}"]


def _long_enough(token: str) -> bool:
    # Latin names of one or two letters are initials or titles, and matching them would mask
    # half the log; names in other scripts are often two characters long.
    return len(token) >= (3 if token.isascii() else 2)


@dataclass
class LibraryIdentifiers:
    """Identifying values read from a case library.

    Attributes
    ----------
    names : set of str
        Patient names as stored (DICOM PN, ``FAMILY^GIVEN^MIDDLE``).
    values : set of str
        Patient IDs, accession numbers, birth dates and UIDs that the UID rule would miss.
    problems : list of str
        Why some could not be read (a damaged or locked library).
    """

    names: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def read_library_identifiers(library_path: str | os.PathLike) -> LibraryIdentifiers:
    """Read every patient name, ID, birth date, accession number and odd UID of a library.

    The file is opened read-only (``mode=ro``), so a report never changes a library.
    Failures are recorded in ``problems``, not raised: the report is still made, and says so.
    """
    found = LibraryIdentifiers()
    path = Path(library_path)
    if not path.is_file():
        found.problems.append(f"the library {path.name} was not found, so its patients' "
                              "identifiers could not be masked by name")
        return found
    try:
        conn = open_read_only(path)
    except sqlite3.Error as exc:
        found.problems.append(f"the library could not be opened ({exc})")
        return found
    try:
        for kind, value in iter_identifiers(conn, _MIN_UID_CHARS, found.problems):
            if kind == "names":
                found.names.add(value)
            elif kind == "dates":
                found.values.update(_birth_date_forms(value))
            elif len(value) >= 3:
                found.values.add(value)
    finally:
        conn.close()
    return found


class Redactor:
    """Mask paths, UIDs, e-mail addresses and identifiers in text (rules in the module docstring).

    Parameters
    ----------
    identifiers : LibraryIdentifiers, optional
        Identifiers of the open library (:func:`read_library_identifiers`).
    home : str, optional
        The user's home folder, written ``~``; default ``Path.home()``.
    code_prefixes : list of (str, str), optional
        (folder, label) pairs of folders holding only code; default: this Python's.

    Notes
    -----
    Thread-safe after construction: :meth:`redact` keeps no state between calls.
    """

    def __init__(self, identifiers: LibraryIdentifiers | None = None, *, home: str | None = None,
                 code_prefixes: list[tuple[str, str]] | None = None) -> None:
        identifiers = identifiers or LibraryIdentifiers()
        self.home = _norm(str(Path.home()) if home is None else home)
        self.code_prefixes = (_code_prefixes() if code_prefixes is None else
                              [(_norm(f), label) for f, label in code_prefixes])
        words: set[str] = set()
        phrases: set[str] = set()
        for name in identifiers.names:
            if _long_enough(name):
                (phrases if _RUN_DELIMITERS.search(name) else words).add(name.casefold())
            words.update(t.casefold() for t in _NAME_SPLIT.split(name)
                         if _long_enough(t) and not _RUN_DELIMITERS.search(t))
            # "O'BRIEN" splits into "O" and "BRIEN" in a log; keep the parts that are long.
            for token in _NAME_SPLIT.split(name):
                words.update(p.casefold() for p in _PART_SPLIT.split(token)
                             if _long_enough(p) and p.isalnum())
        for value in identifiers.values:
            (phrases if _RUN_DELIMITERS.search(value) else words).add(value.casefold())
        self.words = frozenset(words)
        # Identifiers with spaces or punctuation ("MRN 0012") are found from their first word:
        # first word -> {length: phrases}, so each word of the text costs a lookup or two,
        # however many identifiers share that first word.
        self.phrases: dict[str, dict[int, set[str]]] = {}
        for phrase in phrases:
            core = re.sub(r"^\W+|\W+$", "", phrase)
            first = re.match(r"\w+", core)
            if first and len(core) >= 3:
                by_length = self.phrases.setdefault(first.group(0), {})
                by_length.setdefault(len(core), set()).add(core)

    @classmethod
    def for_library(cls, library_path: str | os.PathLike | None, **kwargs) -> Redactor:
        """Return a redactor that knows the identifiers of a library (none if no path)."""
        identifiers = read_library_identifiers(library_path) if library_path else None
        return cls(identifiers, **kwargs)

    def redact(self, text: str, counts: Counter | None = None) -> str:
        """Return ``text`` with every rule applied; add what was masked to ``counts``."""
        counts = Counter() if counts is None else counts
        text = _JSON_TAG_RE.sub(lambda m: self._json_tag(m, counts), text)
        text = _TAG_RE.sub(lambda m: self._tag(m, counts), text)
        text = _KEYWORD_RE.sub(lambda m: self._keyword(m, counts), text)
        text = _PATH_RE.sub(lambda m: self._path(m, counts), text)
        text, n = _EMAIL_RE.subn("[email]", text)
        counts["e-mail addresses"] += n
        text = _UID_RE.sub(lambda m: self._uid(m, counts), text)
        text = self._mask_phrases(text, counts)
        return _RUN_RE.sub(lambda m: self._run(m, counts), text)

    def redact_data(self, value: Any, counts: Counter | None = None) -> Any:
        """Return a copy of JSON-like data with every string redacted."""
        if isinstance(value, str):
            return self.redact(value, counts)
        if isinstance(value, dict):
            return {k: self.redact_data(v, counts) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_data(v, counts) for v in value]
        return value

    # -- rules ---------------------------------------------------------------------------------
    def _mask_phrases(self, text: str, counts: Counter) -> str:
        if not self.phrases:
            return text
        pieces, done = [], 0
        for word in _WORD_RE.finditer(text):
            start = word.start()
            if start < done or (start and text[start - 1].isalnum()):
                continue
            by_length = self.phrases.get(word.group(0).casefold())
            if not by_length:
                continue
            for length in sorted(by_length, reverse=True):  # the longest identifier wins
                end = start + length
                if (text[start:end].casefold() in by_length[length]
                        and (end == len(text) or not (text[end].isalnum() or text[end] == "_"))):
                    pieces += [text[done:start], REDACTED]
                    done = end
                    counts["identifiers from the library"] += 1
                    break
        pieces.append(text[done:])
        return "".join(pieces)

    @staticmethod
    def _tag(match: re.Match, counts: Counter) -> str:
        group, element = match.group(1), match.group(2).upper()
        if group != "0010" and element not in _TAG_ELEMENTS.get(group, ()):
            return match.group(0)
        counts["DICOM attributes"] += 1
        return f"({group},{match.group(2)}) {REDACTED}"

    @staticmethod
    def _json_tag(match: re.Match, counts: Counter) -> str:
        counts["DICOM attributes"] += 1
        quote = match.group(1)
        return f"{quote}{match.group(2)}{quote}: {quote}{REDACTED}{quote}"

    @staticmethod
    def _keyword(match: re.Match, counts: Counter) -> str:
        counts["DICOM attributes"] += 1
        return f"{match.group(1)}{match.group(2)}{REDACTED}"

    def _path(self, match: re.Match, counts: Counter) -> str:
        root, whole = match.group("root"), match.group(0)
        trailing = ""
        while len(whole) > len(root) and whole[-1] in _TRAILING_PUNCTUATION:
            trailing, whole = whole[-1] + trailing, whole[:-1]
        norm = _norm(whole)
        for prefix, label in self.code_prefixes:
            if norm == prefix or norm.startswith(prefix + "/"):
                return label + whole[len(prefix):] + trailing
        if any((norm + "/").startswith(system) for system in _SYSTEM_ROOTS):
            return whole + trailing
        separator = "\\" if "\\" in whole and "/" not in whole[len(root):] else "/"
        if root[0] == "~":
            remainder = whole[len(root):]
        elif self.home and (norm == self.home or norm.startswith(self.home + "/")):
            # _norm keeps lengths, so the home folder is the first len(self.home) characters.
            root, remainder = "~" + separator, whole[len(self.home):]
        else:
            remainder = whole[len(root):]
        parts = [p for p in re.split(r"[\\/]+", remainder) if p]
        if not parts:
            if root[0] == "~":
                counts["paths"] += 1
                return "~" + trailing
            return whole + trailing
        ends_with_separator = whole[-1] in "\\/"
        masked = ["\u2026"] * len(parts)
        if not ends_with_separator:
            extension = _EXTENSION_RE.search(parts[-1])
            masked[-1] = "\u2026" + (extension.group(0) if extension else "")
        counts["paths"] += 1
        return (root + separator.join(masked) + (separator if ends_with_separator else "")
                + trailing)

    @staticmethod
    def _uid(match: re.Match, counts: Counter) -> str:
        uid = match.group(0)
        if len(uid) < _MIN_UID_CHARS or uid.startswith(_DICOM_ROOT):
            return uid
        counts["UIDs"] += 1
        return "[uid]"

    def _run(self, match: re.Match, counts: Counter) -> str:
        run = match.group(0)
        words = self.words
        if run.casefold() in words:
            counts["identifiers from the library"] += 1
            return REDACTED
        start = 0
        while start < len(run) and not run[start].isalnum():
            start += 1
        end = len(run)
        while end > start and not run[end - 1].isalnum():
            end -= 1
        lead, core, tail = run[:start], run[start:end], run[end:]
        if not core:
            return run
        if core.casefold() in words:
            counts["identifiers from the library"] += 1
            return lead + REDACTED + tail
        if "^" in core and core[0].isalpha():
            counts["person names"] += 1
            return lead + "[name]" + tail
        parts = _PART_SPLIT.split(core)
        hits = 0
        for i in range(0, len(parts), 2):  # even indexes are the words, odd the separators
            if parts[i] and parts[i].casefold() in words:
                parts[i] = REDACTED
                hits += 1
        if not hits:
            return run
        counts["identifiers from the library"] += hits
        return lead + "".join(parts) + tail


# -- environment -------------------------------------------------------------------------------

def _version(*names: str) -> tuple[str, str] | None:
    from importlib import metadata

    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _memory_bytes() -> int | None:
    """Return the physical memory, where the system says it cheaply."""
    try:
        if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
            return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        if sys.platform == "win32":
            import ctypes

            class _Status(ctypes.Structure):
                _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                            ("ullTotalPhys", ctypes.c_ulonglong),
                            ("ullAvailPhys", ctypes.c_ulonglong),
                            ("ullTotalPageFile", ctypes.c_ulonglong),
                            ("ullAvailPageFile", ctypes.c_ulonglong),
                            ("ullTotalVirtual", ctypes.c_ulonglong),
                            ("ullAvailVirtual", ctypes.c_ulonglong),
                            ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

            status = _Status()
            status.dwLength = ctypes.sizeof(_Status)
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
                return int(status.ullTotalPhys)
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _onnxruntime_facts() -> dict[str, Any]:
    try:
        import onnxruntime  # imported here: heavy, and the CLI must start without it
    except Exception as exc:  # noqa: BLE001 - a broken install is exactly what a report is for
        return {"importable": False, "error": f"{type(exc).__name__}: {exc}"}
    facts: dict[str, Any] = {"importable": True, "version": getattr(onnxruntime, "__version__", "")}
    try:
        facts["available_providers"] = list(onnxruntime.get_available_providers())
        facts["device"] = onnxruntime.get_device()
    except Exception as exc:  # noqa: BLE001
        facts["error"] = f"{type(exc).__name__}: {exc}"
    return facts


def collect_environment(provider_report: Any = None) -> dict[str, Any]:
    """Describe MedViewer's environment for a problem report.

    Parameters
    ----------
    provider_report : dict or ProviderReport, optional
        The execution provider really in use (``ProviderReport.to_dict()``), when a model is
        loaded.

    Returns
    -------
    dict
        JSON-ready: versions of MedViewer, Python, the system, Qt and the libraries (read from
        package metadata, so Qt is never imported here), CPU count, memory, the ONNX Runtime
        providers this build offers and the one in use.
    """
    from medviewer import __version__

    if provider_report is not None and not isinstance(provider_report, dict):
        provider_report = provider_report.to_dict()
    packages: dict[str, str | None] = {}
    for names in PACKAGES:
        found = _version(*names)
        packages[found[0] if found else names[0]] = found[1] if found else None
    qt = _version(*QT_PACKAGES)
    memory = _memory_bytes()
    return {
        "medviewer": __version__,
        "packaged": bool(getattr(sys, "frozen", False)),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(memory / 2**30, 1) if memory else None,
        "qt": {"package": qt[0], "version": qt[1]} if qt else None,
        "packages": packages,
        "onnxruntime": _onnxruntime_facts(),
        "execution_provider": provider_report,
    }


# -- the report --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProblemReport:
    """A problem report, every text already masked.

    Attributes
    ----------
    created : str
        Local time the report was made (ISO 8601, to the second).
    environment : dict
        :func:`collect_environment`, redacted.
    log_text : str
        The end of the log files, redacted.
    note : str
        What the user wrote, redacted.
    log_names : tuple of str
        File names of the logs read (names only).
    log_chars, log_chars_kept : int
        Characters in those files, and how many of them (the last) were kept, before masking.
    masked : dict
        What was masked, by rule, over log, environment and note.
    problems : tuple of str
        Anything that limited the masking (the library could not be read, say).
    """

    created: str
    environment: dict
    log_text: str
    note: str = ""
    log_names: tuple[str, ...] = ()
    log_chars: int = 0
    log_chars_kept: int = 0
    masked: dict = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    redactor: Redactor | None = field(default=None, repr=False, compare=False)
    _base_masked: dict = field(default_factory=dict, repr=False, compare=False)

    def with_note(self, note: str) -> ProblemReport:
        """Return the report with a new note (redacted by the same rules); the log is reused."""
        counts = Counter(self._base_masked)
        redactor = self.redactor or Redactor()
        masked_note = redactor.redact(note, counts)
        return replace(self, note=masked_note, masked=dict(counts))


def read_logs(log_files: Iterable[str | os.PathLike],
              max_chars: int = MAX_LOG_CHARS) -> tuple[str, tuple[str, ...], int]:
    """Return the text of the log files (in the order given, each under a header), keeping its end.

    Returns
    -------
    (str, tuple of str, int)
        The text kept, the names of the files read, and their total length in characters.
    """
    pieces, names = [], []
    for path in map(Path, log_files):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        names.append(path.name)
        pieces.append(f"===== {path.name} =====\n{text}")
    text = "\n".join(pieces)
    total = len(text)
    if total > max_chars:
        # The end of the log is where the problem is; cut at a line start.
        cut = text[total - max_chars:]
        text = cut[cut.find("\n") + 1:] if "\n" in cut else cut
    return text, tuple(names), total


def build_report(log_files: Iterable[str | os.PathLike], environment: dict, *,
                 library_path: str | os.PathLike | None = None, user_note: str = "",
                 max_log_chars: int = MAX_LOG_CHARS,
                 redactor: Redactor | None = None) -> ProblemReport:
    """Read the logs and mask them, the environment and the note.

    Parameters
    ----------
    log_files : iterable of path
        Log files, oldest first (:func:`medviewer.services.logs.log_files`).
    environment : dict
        :func:`collect_environment`.
    library_path : path, optional
        The open case library: its patients' identifiers are masked wherever they appear.
    user_note : str
        What the user wrote about the problem.
    max_log_chars : int
        Keep the last this many characters of the logs.
    redactor : Redactor, optional
        Default ``Redactor.for_library(library_path)``.

    Returns
    -------
    ProblemReport
    """
    problems: list[str] = []
    if redactor is None:
        identifiers = read_library_identifiers(library_path) if library_path else None
        if identifiers is not None:
            problems.extend(identifiers.problems)
        redactor = Redactor(identifiers)
    raw, names, total = read_logs(log_files, max_log_chars)
    counts: Counter = Counter()
    log_text = redactor.redact(raw, counts)
    env = redactor.redact_data(environment, counts)
    if not names:
        problems.append("no log file was found")
    report = ProblemReport(created=dt.datetime.now().isoformat(timespec="seconds"),
                           environment=env, log_text=log_text, log_names=names,
                           log_chars=total, log_chars_kept=len(raw), problems=tuple(problems), redactor=redactor,
                           _base_masked=dict(counts))
    return report.with_note(user_note)


_RULE_NAMES = {  # rule -> (one, many)
    "paths": ("path", "paths"),
    "UIDs": ("UID", "UIDs"),
    "identifiers from the library": ("identifier from the library",
                                     "identifiers from the library"),
    "person names": ("DICOM person name", "DICOM person names"),
    "DICOM attributes": ("identifying DICOM attribute", "identifying DICOM attributes"),
    "e-mail addresses": ("e-mail address", "e-mail addresses"),
}


def masked_summary(masked: dict) -> str:
    """Return what was masked in words, e.g. ``3 paths, 1 UID`` ("" when nothing was)."""
    parts = []
    for rule, n in masked.items():
        if n:
            one, many = _RULE_NAMES.get(rule, (rule, rule))
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def _readme(report: ProblemReport) -> str:
    masked = masked_summary(report.masked) or "nothing"
    kept = report.log_chars_kept
    logs = ", ".join(report.log_names) or "none found"
    if report.log_chars > kept:
        extent = f"the last {kept:,} of {report.log_chars:,} characters"
    else:
        extent = "all of it"
    lines = [
        "MedViewer problem report",
        f"Made {report.created} by MedViewer {report.environment.get('medviewer', '?')}.",
        "",
        "Inside:",
        "  README.txt        this file",
        "  environment.json  versions of MedViewer, Python, the operating system, Qt and the",
        "                    libraries; CPU count and memory; the ONNX Runtime execution",
        "                    providers available and the one in use",
        f"  log.txt           MedViewer's log ({logs}; {extent}), masked",
        "  note.txt          what you wrote, masked the same way",
        "",
        "Not inside: no images or pixel data, no DICOM headers, no case library, no settings,",
        "no reader-study picks or notes.",
        "",
        "Masked before saving: absolute paths keep only their depth and file extension",
        "(your home folder is '~'); DICOM UIDs are [uid]; names, IDs, birth dates and accession",
        "numbers of the patients in the open library are [redacted]; identifying DICOM",
        "attributes are [redacted]; DICOM person names (FAMILY^GIVEN) are [name]; e-mail",
        "addresses are [email].",
        f"Masked in this report: {masked}.",
    ]
    for problem in report.problems:
        lines.append(f"Note: {problem}.")
    lines += ["", "Please read the files before you send them."]
    return "\n".join(lines) + "\n"


def report_files(report: ProblemReport) -> dict[str, str]:
    """Return the report's files, name -> text, in the order they are saved and shown."""
    return {
        "README.txt": _readme(report),
        "environment.json": json.dumps(report.environment, indent=2, ensure_ascii=False) + "\n",
        "note.txt": report.note + ("\n" if report.note and not report.note.endswith("\n") else ""),
        "log.txt": report.log_text,
    }


def preview_text(report: ProblemReport) -> str:
    """Return exactly what :func:`write_report` saves: each file under its name."""
    return "\n".join(f"===== {name} =====\n{text}" for name, text in report_files(report).items())


def default_report_name(now: dt.datetime | None = None) -> str:
    """Return ``medviewer-report-YYYYMMDD-HHMM.zip`` for now."""
    return f"medviewer-report-{(now or dt.datetime.now()):%Y%m%d-%H%M}.zip"


def write_report(report: ProblemReport, out_path: str | os.PathLike) -> Path:
    """Save the report as a zip of its text files; return the path (``.zip`` added if missing).

    Made in memory and written atomically, so a failure never leaves half a zip.
    """
    out = Path(out_path)
    if out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in report_files(report).items():
            archive.writestr(name, text.encode("utf-8"))
    atomic_write_bytes(out, buffer.getvalue())
    return out
