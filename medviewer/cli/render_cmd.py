"""``medviewer render``: write one image as PNG exactly as the viewer shows it."""

from __future__ import annotations

from medviewer.cli.output import emit, fail


def register(subparsers) -> None:
    """Add the ``render`` subcommand."""
    parser = subparsers.add_parser("render", help="render one image to PNG")
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("--out", required=True, metavar="FILE.png")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--window", metavar="CENTER,WIDTH", help="window in modality units")
    group.add_argument("--preset", help="lung, mediastinum, bone, brain, abdomen or auto")
    parser.add_argument("--frame", type=int, default=0, help="frame of a multi-frame image")
    parser.add_argument("--invert", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Decode, window and save the image."""
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.display.render import render_frame, resolve_window, save_png
    from medviewer.display.windowing import Window

    window = None
    if args.window:
        try:
            center, width = (float(v) for v in args.window.split(","))
        except ValueError:
            return fail("--window takes CENTER,WIDTH, e.g. --window 40,400")
        window = Window(center, width, "command line")
    image = decode(FileRef.from_display(args.path))
    try:
        pixels = render_frame(image, args.frame, window=window, preset=args.preset,
                              invert=args.invert)
    except (ValueError, IndexError) as exc:
        return fail(str(exc))
    save_png(pixels, args.out)
    used = None if image.is_color else resolve_window(image, args.frame, window, args.preset)
    payload = {"out": args.out, "frame": args.frame, "frames": image.frame_count,
               "photometric": image.photometric,
               "window": None if used is None else {"center": used.center, "width": used.width,
                                                    "name": used.name}}
    text = f"wrote {args.out}"
    if used is not None:
        text += f" (window {used.center:g}/{used.width:g} {used.name})"
    emit(args.json, payload, text)
    return 0
