"""``medviewer pacs``: configure PACS nodes, verify them, query and retrieve studies."""

from __future__ import annotations

from medviewer.cli.output import emit


def register(subparsers) -> None:
    """Add the ``pacs`` command group."""
    parser = subparsers.add_parser(
        "pacs", help="query and retrieve studies from a PACS (DICOM or DICOMweb)",
        description="Configure DICOM nodes and DICOMweb endpoints, verify them, query studies "
        "and retrieve them into a case library.")
    parser.add_argument("--config", metavar="FILE",
                        help="node configuration file (default: pacs.json in the config folder)")
    sub = parser.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    nodes = sub.add_parser("nodes", help="list, add or remove nodes")
    nodes_sub = nodes.add_subparsers(dest="nodes_command", metavar="ACTION", required=True)
    p = nodes_sub.add_parser("list", help="list nodes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_nodes_list)
    p = nodes_sub.add_parser("add", help="add a DICOM node (--ae --host --port) or a "
                             "DICOMweb endpoint (--url)")
    p.add_argument("name")
    p.add_argument("--ae", dest="ae_title", default="", help="the node's AE title")
    p.add_argument("--host", default="")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--retrieve", choices=("get", "move"), default="get",
                   help="DIMSE retrieve method (default get)")
    p.add_argument("--url", default="", help="DICOMweb root, e.g. http://host:8042/dicom-web")
    p.add_argument("--auth", choices=("none", "basic", "bearer"), default="none")
    p.add_argument("--username", default="")
    p.add_argument("--password-env", default="", help="variable holding the password")
    p.add_argument("--token-env", default="", help="variable holding the bearer token")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    p.add_argument("--replace", action="store_true", help="replace a node of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_nodes_add)
    p = nodes_sub.add_parser("remove", help="remove a node")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_nodes_remove)
    p = nodes_sub.add_parser("local", help="set our AE title and C-MOVE storage port")
    p.add_argument("--ae", dest="ae_title", required=True)
    p.add_argument("--host", default="0.0.0.0", help="storage SCP address (default all)")
    p.add_argument("--port", type=int, required=True, help="storage SCP port")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_nodes_local)

    p = sub.add_parser("echo", help="verify a node (C-ECHO or a DICOMweb query)")
    p.add_argument("node")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_echo)

    p = sub.add_parser("query", help="find studies (C-FIND or QIDO-RS)")
    p.add_argument("node")
    _query_args(p)
    p.add_argument("--library", help="also say which studies the library already has")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_query)

    p = sub.add_parser("retrieve", help="retrieve studies into a library (C-GET, C-MOVE or "
                       "WADO-RS); studies already present are not fetched again")
    p.add_argument("node")
    p.add_argument("--study", action="append", default=[], metavar="UID",
                   help="Study Instance UID (repeat); or select with the query options")
    _query_args(p)
    p.add_argument("--library", required=True)
    p.add_argument("--out", metavar="DIR", help="folder for the files (default: data folder)")
    p.add_argument("--method", choices=("get", "move"), help="override the node's method")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_retrieve)


def _query_args(p) -> None:
    p.add_argument("--patient-id", default="")
    p.add_argument("--patient-name", default="", help="wildcards allowed, e.g. DOE*")
    p.add_argument("--date", default="", metavar="YYYYMMDD[-YYYYMMDD]")
    p.add_argument("--modality", default="")
    p.add_argument("--accession", default="")
    p.add_argument("--limit", type=int, default=200)


def _study_query(args):
    from medviewer.pacs import StudyQuery

    return StudyQuery(patient_id=args.patient_id, patient_name=args.patient_name,
                      study_date=args.date, modality=args.modality, accession=args.accession,
                      limit=args.limit)


def _nodes_list(args) -> int:
    from medviewer.services import pacs

    config = pacs.list_nodes(args.config)
    text = "\n".join([(f"local: {config.local.ae_title} (storage "
                       f"{config.local.storage_host}:{config.local.storage_port})")] +
                     [n.describe() for n in config.nodes] or ["No nodes."])
    emit(args.json, config.as_dict(), text)
    return 0


def _nodes_add(args) -> int:
    from medviewer.pacs import Node
    from medviewer.services import pacs

    kind = "dicomweb" if args.url else "dimse"
    node = Node(name=args.name, kind=kind, ae_title=args.ae_title, host=args.host,
                port=args.port, retrieve=args.retrieve, url=args.url, auth=args.auth,
                username=args.username, password_env=args.password_env,
                token_env=args.token_env, timeout=args.timeout)
    config = pacs.add_node(node, replace=args.replace, config_path=args.config)
    emit(args.json, config.as_dict(), f"Added {node.describe()}")
    return 0


def _nodes_remove(args) -> int:
    from medviewer.services import pacs

    config = pacs.remove_node(args.name, config_path=args.config)
    emit(args.json, config.as_dict(), f"Removed {args.name}.")
    return 0


def _nodes_local(args) -> int:
    from medviewer.pacs import LocalAE
    from medviewer.services import pacs

    config = pacs.set_local_ae(LocalAE(args.ae_title, args.host, args.port), args.config)
    emit(args.json, config.as_dict(), f"Local AE {args.ae_title}, storage on "
         f"{args.host}:{args.port}.")
    return 0


def _echo(args) -> int:
    from medviewer.services import pacs

    result = pacs.echo(args.node, args.config)
    emit(args.json, result.as_dict(), f"{args.node}: {'OK' if result.ok else 'FAILED'} "
         f"({result.status}, {result.seconds * 1000:.0f} ms)")
    return 0 if result.ok else 1


def _query(args) -> int:
    from medviewer.services import pacs
    from medviewer.tasks import TaskState

    library = None
    if args.library:
        from medviewer.store import Library

        library = Library(args.library)
    try:
        matches = pacs.query(args.node, _study_query(args), library=library,
                             config_path=args.config, state=TaskState())
    finally:
        if library is not None:
            library.close()
    lines = [f"{m.study_uid}  {m.study_date}  {m.patient_id}  {m.patient_name}  "
             f"{'/'.join(m.modalities)}  {m.accession}  {m.instances or '?'} instances"
             + (f"  ({m.in_library} in library)" if m.in_library else "") for m in matches]
    emit(args.json, [m.as_dict() for m in matches], "\n".join(lines) or "No study matches.")
    return 0


def _retrieve(args) -> int:
    from medviewer.pacs import PacsError
    from medviewer.services import pacs
    from medviewer.store import Library
    from medviewer.tasks import TaskState

    query = _study_query(args)
    with Library(args.library) as library:
        uids = list(args.study)
        if not uids:
            if query.is_empty:
                raise PacsError("nothing to retrieve", hint="give --study UID or query options "
                                "such as --patient-id or --accession")
            uids = [m.study_uid for m in pacs.query(args.node, query, config_path=args.config)]
        report = pacs.retrieve(args.node, uids, library, folder=args.out, method=args.method,
                               config_path=args.config, state=TaskState())
    lines = [(f"Retrieved {len(report.files)} files from {args.node} into {report.folder}; "
              f"{len(report.already_present)} studies already in the library.")]
    if report.imported:
        lines.append(f"Imported {report.imported.instances} images "
                     f"({report.imported.studies} studies).")
    for t in report.transfers:
        lines += [f"  warning: {t.study_uid}: {w}" for w in t.warnings]
    emit(args.json, report.as_dict(), "\n".join(lines))
    return 0
