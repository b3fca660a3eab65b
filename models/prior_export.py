"""Export a PRIOR-style checkpoint as an image-text model bundle.

The folder is a normal MedViewer bundle (``model.onnx``: the image tower with
``logits``, ``embedding``, ``tokens`` and attention outputs, so classification,
similar cases and saliency work as with any bundle) plus the text side:

- ``text_encoder.onnx``: ``input_ids``, ``attention_mask`` (int64, N x L) ->
  ``text_embedding`` (N x D, unit length);
- ``tokenizer.json``: the ``tokenizers`` WordPiece tokenizer trained on the
  training reports (padding and truncation to L built in).

``metadata.json`` gains an ``image_text`` block naming these files (with their
sha256), the outputs that live in the joint space (image ``embedding``, patch
``tokens``, ``text_embedding``: cosine), and the maximum sentence length.  Both
ONNX files are checked against torch with ONNX Runtime before anything is
written, and the finished folder must pass the app's own loader.

    python -m models.prior_export RUN/best.pt RUN/tokenizer.json OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.card import render_card
from models.export import EMBEDDING_COSINE, LOGITS_ATOL, ExportCheckError, _json_default, _versions
from models.prior import ImageExportGraph, PriorConfig, PriorModel, encode
from models.vit import architecture_summary

FINDINGS = ("Cardiomegaly", "Emphysema", "Opacity")
IMAGE_TEXT_FORMAT = 1
PROBE_PHRASES = ["cardiomegaly", "no focal consolidation", "the lungs are hyperinflated",
                 "small right lower zone opacity measuring 2.5 cm", "normal chest radiograph"]


def load_checkpoint(path: str | Path) -> tuple[PriorModel, dict[str, Any]]:
    """Return the model (eval mode) and the checkpoint dict."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = PriorModel(PriorConfig(**state["cfg"]))
    model.load_state_dict(state["model"])
    return model.eval(), state


class TextExportGraph(torch.nn.Module):
    """The sentence encoder with named inputs, for export."""

    def __init__(self, model: PriorModel) -> None:
        super().__init__()
        self.text = model.text.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return (N, D) unit text embeddings."""
        return self.text(input_ids, attention_mask)


def export_prior_bundle(checkpoint: str | Path, tokenizer_path: str | Path, out_dir: str | Path, *,
                        metrics: dict[str, Any] | None = None, source: str = "", opset: int = 17,
                        overwrite: bool = False, log=print) -> dict[str, Any]:
    """Write and validate the bundle; return its metadata.

    Raises
    ------
    ExportCheckError
        ONNX Runtime disagrees with torch; nothing was written.
    """
    from tokenizers import Tokenizer

    from medviewer.fileio import sha256_file
    from medviewer.inference.metadata import FORMAT_NAME, FORMAT_VERSION

    model, state = load_checkpoint(checkpoint)
    cfg = model.cfg
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        image_graph = ImageExportGraph(model.image)
        text_graph = TextExportGraph(model)
        size = cfg.img_size
        ids, mask = encode(tokenizer, PROBE_PHRASES)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(image_graph, (torch.randn(2, 3, size, size),), str(tmp / "model.onnx"),
                              dynamo=False, opset_version=opset, input_names=["image"],
                              output_names=image_graph.output_names, do_constant_folding=True,
                              dynamic_axes={n: {0: "batch"} for n in ["image", *image_graph.output_names]})
            torch.onnx.export(text_graph, (ids, mask), str(tmp / "text_encoder.onnx"), dynamo=False,
                              opset_version=opset, input_names=["input_ids", "attention_mask"],
                              output_names=["text_embedding"], do_constant_folding=True,
                              dynamic_axes={"input_ids": {0: "batch"}, "attention_mask": {0: "batch"},
                                            "text_embedding": {0: "batch"}})
        checks = _parity(image_graph, text_graph, tmp, size, ids, mask)
        log("parity: " + json.dumps(checks))
        shutil.copyfile(tokenizer_path, tmp / "tokenizer.json")
        depth = len(model.image.vit.blocks)
        arch = architecture_summary(model.image.vit)
        meta = {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "name": out_dir.name, "task": "multilabel", "labels": list(FINDINGS),
            "preprocessing": state["preprocess"],
            "input": {"name": "image", "layout": "NCHW", "dtype": "float32"},
            "outputs": {"logits": "logits", "embedding": "embedding", "tokens": "tokens",
                        "attention": [f"attn_{i}" for i in range(depth)]},
            "embedding": {"dim": cfg.joint_dim, "metric": "cosine", "normalise": "l2"},
            "saliency": {"attention_rollout": "attention", "token_similarity": "tokens",
                         "occlusion": "logits"},
            "architecture": arch,
            "model_file": "model.onnx", "model_sha256": sha256_file(tmp / "model.onnx"),
            "image_text": {
                "format_version": IMAGE_TEXT_FORMAT,
                "text_model_file": "text_encoder.onnx",
                "text_model_sha256": sha256_file(tmp / "text_encoder.onnx"),
                "tokenizer_file": "tokenizer.json",
                "tokenizer_sha256": sha256_file(tmp / "tokenizer.json"),
                "text_inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask"},
                "text_output": "text_embedding",
                "max_tokens": cfg.max_tokens,
                "joint_space": {"dim": cfg.joint_dim, "metric": "cosine",
                                "image_output": "embedding", "region_output": "tokens",
                                "text_output": "text_embedding"},
                "unit": "sentence: phrases and report sentences are encoded one at a time",
            },
            "recipe": {"name": "PRIOR-style (models.prior)", "config": cfg.to_dict(),
                       "best_epoch": int(state["epoch"]) + 1,
                       "losses": "global InfoNCE + sentence prototype bank + local sentence-region "
                                 "InfoNCE + auxiliary finding BCE"},
            "training_data": {"source": source},
            "metrics": {"test": _compact(metrics)} if metrics else {},
            "export_checks": checks,
            "versions": {**_versions(opset), "tokenizers": _tokenizers_version()},
            "card": {"summary": "Image-text model: search images by phrase and report sentences by "
                                "image, in one embedding space.",
                     "intended_use": "Research and teaching on the data it was trained on.",
                     "limits": "Trained on synthetic phantoms with generated reports (or label-"
                               "derived sentences): its text side knows only that vocabulary."},
        }
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
        (tmp / "card.md").write_text(render_card(meta, {"Image-text": _card_section(meta)}))
        from medviewer.reports.learned import load_text_encoder

        load_text_encoder(tmp)  # the finished folder must pass the app's own loader
        tmp.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"wrote {out_dir}")
    return meta


def _parity(image_graph, text_graph, folder: Path, size: int, ids, mask) -> dict[str, Any]:
    from medviewer.inference.session import create_session

    session, _ = create_session(folder / "model.onnx", "cpu")
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        ref = [t.numpy() for t in image_graph(x)]
        tref = text_graph(ids, mask).numpy()
    got = session.run(image_graph.output_names, {"image": x.numpy()})
    tsession, _ = create_session(folder / "text_encoder.onnx", "cpu")
    tgot = tsession.run(["text_embedding"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    tgot1 = tsession.run(["text_embedding"], {"input_ids": ids[:1].numpy(), "attention_mask": mask[:1].numpy()})[0]
    logits = float(np.abs(ref[0] - got[0]).max())
    cos = float(_cos(ref[1], got[1]).min())
    tcos = float(min(_cos(tref, tgot).min(), _cos(tref[:1], tgot1).min()))
    checks = {"logits_max_abs_diff": float(f"{logits:.3g}"), "embedding_min_cosine": round(cos, 8),
              "text_embedding_min_cosine": round(tcos, 8)}
    if logits > LOGITS_ATOL or cos < EMBEDDING_COSINE or tcos < EMBEDDING_COSINE:
        raise ExportCheckError(f"ONNX Runtime disagrees with torch: {checks}", path=folder,
                               hint="no bundle was written; check the opset and versions")
    return checks


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)).clip(1e-12)


def _tokenizers_version() -> str:
    import tokenizers

    return tokenizers.__version__


def _compact(metrics: dict[str, Any]) -> dict[str, Any]:
    """Keep the headline test numbers (per-phrase p@5 and the negation check) for the card."""
    t2i = metrics.get("text_to_image", {})
    learned = t2i.get("learned", {})
    return {"text_to_image_p@5": {k: round(v["p@5"], 3) for k, v in learned.get("phrases", {}).items()},
            "bm25_p@5": {k: round(v["p@5"], 3)
                         for k, v in t2i.get("bm25_over_reports", {}).get("phrases", {}).items()},
            "negated_below_positive": {k: round(v["negated_below_positive"], 3)
                                       for k, v in learned.get("negation", {}).items()},
            "image_to_image_p@5": {k: round(v["p@5"], 3) for k, v in metrics.get("image_to_image", {}).items()}}


def _card_section(meta: dict[str, Any]) -> str:
    it = meta["image_text"]
    return (f"Text encoder `{it['text_model_file']}` and tokenizer `{it['tokenizer_file']}`; "
            f"`{it['joint_space']['image_output']}` (image), `{it['joint_space']['region_output']}` "
            f"(patches) and `{it['text_output']}` (sentences) share one {it['joint_space']['dim']}-d "
            "cosine space. Phrases longer than "
            f"{it['max_tokens']} tokens are cut.")


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m models.prior_export``."""
    p = argparse.ArgumentParser(prog="python -m models.prior_export")
    p.add_argument("checkpoint")
    p.add_argument("tokenizer")
    p.add_argument("out_dir")
    p.add_argument("--metrics", help="metrics.json of the run, for the card")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else None
    export_prior_bundle(args.checkpoint, args.tokenizer, args.out_dir, metrics=metrics,
                        overwrite=args.overwrite, source=(metrics or {}).get("source", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
