"""``medviewer teach``: teaching collections, notes, tags, search, quiz and export, headless."""

from __future__ import annotations

from medviewer.cli.output import emit


def register(subparsers) -> None:
    """Add the ``teach`` command group."""
    parser = subparsers.add_parser(
        "teach", help="teaching files: collections, notes, quiz, export",
        description="Curate teaching collections in a case library and export them as "
        "de-identified teaching packages (HTML, PNG, DICOM with a 'For Teaching' KOS).")
    sub = parser.add_subparsers(dest="teach_command", metavar="ACTION", required=True)

    def add(name: str, help_text: str, func):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--library", required=True, help="library file")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    p = add("create", "create a collection", _create)
    p.add_argument("name")
    p.add_argument("--description", default="")
    add("list", "list collections", _list)
    p = add("show", "list a collection's cases and exemplars", _show)
    p.add_argument("collection")
    p = add("add", "add cases to a collection (or exemplars of a case with --role)", _add)
    p.add_argument("collection")
    p.add_argument("cases", nargs="+", type=int, metavar="CASE")
    p.add_argument("--role", choices=("case", "similar", "dissimilar"), default="case")
    p.add_argument("--anchor", type=int, metavar="CASE", help="the case exemplars illustrate")
    p = add("key", "store a key image of a case as shown (window, overlay, caption)", _key)
    p.add_argument("collection")
    p.add_argument("case", type=int)
    p.add_argument("--instance", type=int, help="library instance id (default: the case image)")
    p.add_argument("--frame", type=int)
    p.add_argument("--window", metavar="CENTER,WIDTH")
    p.add_argument("--overlay", default="")
    p.add_argument("--caption", default="")
    p.add_argument("--blackout", action="append", default=[], metavar="X,Y,W,H",
                   help="rectangle to black out before export (burned-in text)")
    p = add("note", "write a case's teaching note (only the fields given change)", _note)
    p.add_argument("case", type=int)
    for name in ("history", "findings", "diagnosis", "discussion", "references", "text"):
        p.add_argument(f"--{name}")
    p = add("tag", "tag cases", _tag)
    p.add_argument("cases", nargs="+", type=int, metavar="CASE")
    p.add_argument("--tags", required=True, help="comma-separated tags")
    p.add_argument("--remove", action="store_true", help="remove the tags instead")
    p = add("search", "find cases by label, tag, note text, modality, date", _search)
    p.add_argument("--label")
    p.add_argument("--tag")
    p.add_argument("--text", help="words in a note")
    p.add_argument("--modality")
    p.add_argument("--from", dest="date_from", metavar="YYYYMMDD")
    p.add_argument("--to", dest="date_to", metavar="YYYYMMDD")
    p = add("export", "export a collection as a de-identified teaching package", _export)
    p.add_argument("collection")
    p.add_argument("--out", required=True, metavar="DIR", help="package folder (new or empty)")
    p.add_argument("--no-exemplars", action="store_true")
    p.add_argument("--allow-burned-in", action="store_true",
                   help="export images flagged for burned-in text without blackout")
    p.add_argument("--secret-file", metavar="FILE", help="UID mapping key (see 'deid')")
    from medviewer.cli.deid_cmd import add_deid_options

    add_deid_options(p)
    p = add("quiz-start", "start an unknown-case quiz", _quiz_start)
    p.add_argument("collection")
    p.add_argument("--trainee", required=True)
    p = add("quiz-next", "show the next question (history only)", _quiz_next)
    p.add_argument("session", type=int)
    p.add_argument("--images", metavar="DIR",
                   help="write the question's images here as question-N-K.png (default: a "
                   "new temporary folder); the quiz never shows where an image is stored")
    p = add("quiz-answer", "answer a question; the diagnosis is shown after", _quiz_answer)
    p.add_argument("session", type=int)
    p.add_argument("case", type=int)
    p.add_argument("answer")
    p = add("quiz-mark", "grade an answer", _quiz_mark)
    p.add_argument("session", type=int)
    p.add_argument("case", type=int)
    p.add_argument("grade", choices=("correct", "wrong"))
    p = add("quiz-results", "show a quiz's score", _quiz_results)
    p.add_argument("session", type=int)
    p = add("quiz-scores", "show every learner's score on a collection", _quiz_scores)
    p.add_argument("collection")


def _vars(obj) -> dict:
    from dataclasses import asdict

    return asdict(obj)


def _create(args) -> int:
    from medviewer.services import teaching

    c = teaching.create_collection(args.library, args.name, args.description)
    emit(args.json, _vars(c), f"Created collection {c.name!r} (id {c.id}).")
    return 0


def _list(args) -> int:
    from medviewer.services import teaching

    rows = teaching.list_collections(args.library)
    text = "\n".join(f"{c.id:4d}  {c.name}  ({c.cases} cases, {c.exemplars} exemplars)"
                     for c in rows) or "No collections."
    emit(args.json, [_vars(c) for c in rows], text)
    return 0


def _show(args) -> int:
    from medviewer.services import teaching

    items = teaching.collection_items(args.library, args.collection)
    lines = []
    for i in items:
        indent = "    " if i.role != "case" else ""
        lines.append(f"{indent}item {i.id}: case {i.case_id} {i.role} {i.modality} "
                     f"{', '.join(i.labels)} ({len(i.key_images)} key images)")
    emit(args.json, [_vars(i) for i in items], "\n".join(lines) or "The collection is empty.")
    return 0


def _add(args) -> int:
    from medviewer.services import teaching

    if args.role == "case":
        items = teaching.add_cases(args.library, args.collection, args.cases)
    else:
        if args.anchor is None:
            from medviewer.teaching import TeachingError

            raise TeachingError("exemplars need the case they illustrate",
                                hint="pass --anchor CASE")
        items = teaching.add_exemplars(args.library, args.collection, args.anchor, args.cases,
                                       args.role)
    emit(args.json, [_vars(i) for i in items],
         f"{len(items)} {args.role} item(s) in {args.collection!r}.")
    return 0


def _key(args) -> int:
    from medviewer.services import teaching
    from medviewer.teaching import TeachingError

    window = None
    if args.window:
        try:
            center, width = (float(v) for v in args.window.split(","))
        except ValueError as exc:
            raise TeachingError("--window takes CENTER,WIDTH") from exc
        window = (center, width)
    try:
        rects = [tuple(int(v) for v in b.split(",")) for b in args.blackout]
    except ValueError as exc:
        raise TeachingError("--blackout takes X,Y,W,H in pixels") from exc
    item = next((i for i in teaching.collection_items(args.library, args.collection)
                 if i.case_id == args.case and i.role == "case"), None)
    if item is None:
        raise TeachingError(f"case {args.case} is not a teaching case of {args.collection!r}",
                            hint="add it first with 'medviewer teach add'")
    key = teaching.set_key_image(args.library, item.id, instance_id=args.instance,
                                 frame=args.frame, window=window, overlay=args.overlay,
                                 caption=args.caption, blackout=rects)
    emit(args.json, _vars(key), f"Key image {key.id} of case {args.case} stored.")
    return 0


def _note(args) -> int:
    from medviewer.services import teaching

    fields = {k: v for k, v in (("history", args.history), ("findings", args.findings),
                                ("diagnosis", args.diagnosis), ("discussion", args.discussion),
                                ("citations", args.references), ("free_text", args.text))
              if v is not None}
    note = (teaching.save_note(args.library, args.case, **fields) if fields else
            teaching.get_note(args.library, args.case))
    text = "\n".join(f"{k}: {getattr(note, k)}" for k in
                     ("history", "findings", "diagnosis", "discussion", "citations",
                      "free_text") if getattr(note, k))
    emit(args.json, _vars(note), text or f"Case {args.case} has no note.")
    return 0


def _tag(args) -> int:
    from medviewer.services import teaching

    tags = [t for t in args.tags.split(",") if t.strip()]
    if args.remove:
        teaching.untag_cases(args.library, args.cases, tags)
    else:
        teaching.tag_cases(args.library, args.cases, tags)
    result = {c: teaching.case_tags(args.library, c) for c in args.cases}
    emit(args.json, result, "\n".join(f"case {c}: {', '.join(t)}" for c, t in result.items()))
    return 0


def _search(args) -> int:
    from medviewer.services import teaching

    hits = teaching.search(args.library, label=args.label, tag=args.tag, text=args.text,
                           modality=args.modality, date_from=args.date_from,
                           date_to=args.date_to)
    text = "\n".join(f"case {h.case_id}: {h.modality} {h.study_date} "
                     f"labels={','.join(h.labels)} tags={','.join(h.tags)}" for h in hits)
    emit(args.json, [_vars(h) for h in hits], text or "No case matches.")
    return 0


def _export(args) -> int:
    from medviewer.cli.deid_cmd import options_from, read_secret
    from medviewer.services import teaching
    from medviewer.tasks import TaskState

    result = teaching.export(
        args.library, args.collection, args.out, options=options_from(args),
        secret=read_secret(args.secret_file) if args.secret_file else None,
        include_exemplars=not args.no_exemplars,
        burned_in="export" if args.allow_burned_in else "skip", state=TaskState())
    lines = [(f"Exported {len(result.cases)} cases to {result.out_dir} "
              f"({len(result.deid.written) if result.deid else 0} DICOM files, "
              f"{len(result.kos)} key object selections)."), f"Open {result.index}"]
    lines += [f"  withheld: case {c}: {r}" for c, r in result.skipped]
    lines += [f"  warning: {w}" for w in result.warnings]
    emit(args.json, result.as_dict(), "\n".join(lines))
    return 0


def _quiz_start(args) -> int:
    from medviewer.services import teaching

    session = teaching.start_quiz(args.library, args.collection, args.trainee)
    emit(args.json, _vars(session), f"Quiz session {session.id}: {session.questions} questions.")
    return 0


def _quiz_next(args) -> int:
    from medviewer.services import teaching

    q = teaching.next_question(args.library, args.session)
    if q is None:
        emit(args.json, None, "All questions are answered.")
        return 0
    import tempfile

    from medviewer.services.teaching_images import write_question_images

    folder = args.images or tempfile.mkdtemp(prefix=f"medviewer-quiz-{q.session_id}-")
    paths = write_question_images(q.key_images, folder, q.number)
    # The library path of an image can hold the patient's MRN or name: never print it.
    data = {"session_id": q.session_id, "case_id": q.case_id, "number": q.number,
            "total": q.total, "history": q.history, "images": [str(p) for p in paths]}
    emit(args.json, data, f"Question {q.number} of {q.total} (answer with case {q.case_id})\n"
         f"History: {q.history or '(none)'}\nImages: {', '.join(map(str, paths))}")
    return 0


def _feedback_text(f) -> str:
    grade = {None: "not graded", True: "correct", False: "wrong"}[f.correct]
    return (f"Your answer: {f.answer}\nDiagnosis: {f.diagnosis or '(none written)'}\n"
            f"Findings: {f.findings}\nMatch: {'yes' if f.matched else 'no'}; {grade}")


def _quiz_answer(args) -> int:
    from medviewer.services import teaching

    f = teaching.answer(args.library, args.session, args.case, args.answer)
    emit(args.json, _vars(f), _feedback_text(f))
    return 0


def _quiz_mark(args) -> int:
    from medviewer.services import teaching

    f = teaching.mark_answer(args.library, args.session, args.case, args.grade == "correct")
    emit(args.json, _vars(f), _feedback_text(f))
    return 0


def _quiz_results(args) -> int:
    from medviewer.services import teaching

    r = teaching.quiz_results(args.library, args.session)
    emit(args.json, r.as_dict(), f"{r.trainee}: {r.answered}/{r.questions} answered, "
         f"{r.correct} correct of {r.graded} graded, {r.matched} matched the diagnosis.")
    return 0


def _quiz_scores(args) -> int:
    from medviewer.services import teaching

    rows = teaching.learner_scores(args.library, args.collection)
    text = "\n".join(f"{r['trainee']}: {r['correct']} correct of {r['graded']} graded, "
                     f"{r['answered']} answered in {r['sessions']} session(s)" for r in rows)
    emit(args.json, rows, text or "Nobody has taken this quiz yet.")
    return 0
