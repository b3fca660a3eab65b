"""Self-supervised pretraining (PEAC, ISImed): grid-window encoding, matching, losses, resume, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from models.pretrain import (  # noqa: E402
    GridEncoder,
    PretrainConfig,
    PretrainDataError,
    PretrainModel,
    UnlabelledImage,
    isimed_loss,
    load_pretrained_backbone,
    overlap_pairs,
    overlapping_windows,
    peac_loss,
    pretrain,
)
from models.vit import ArchConfig, build_model  # noqa: E402


def tiny_arch() -> ArchConfig:
    return ArchConfig(model="custom", patch_size=8, embed_dim=32, depth=2, num_heads=2, img_size=32)


def images(n: int = 8, seed: int = 0) -> list[UnlabelledImage]:
    rng = np.random.default_rng(seed)
    return [UnlabelledImage(f"i{i}", (rng.random((40, 40)) * 255).astype(np.uint8), 0.5) for i in range(n)]


def test_the_whole_grid_as_one_window_is_the_model_itself():
    model = build_model(tiny_arch()).eval()
    enc = GridEncoder(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        emb, patches = enc.encode(enc.grid_tokens(x), [0, 0], [0, 0], 4)
        ref = model.forward_features(x)
    assert torch.allclose(patches, ref[:, 1:], atol=1e-5)
    assert torch.allclose(emb, model.pre_logits(ref), atol=1e-5)


def test_a_window_sees_only_its_tokens_at_their_own_place():
    model = build_model(tiny_arch()).eval()
    enc = GridEncoder(model)
    grid = enc.grid_tokens(torch.randn(1, 3, 32, 32))
    elsewhere = grid.clone()
    elsewhere[:, 2:, :] = 0.0  # change every cell outside the top-left 2x2 window
    moved = grid.roll(shifts=(-2, -2), dims=(1, 2))  # the (2, 2) window's tokens now at (0, 0)
    with torch.no_grad():
        a = enc.encode(grid, [0], [0], 2)[0]
        a_elsewhere = enc.encode(elsewhere, [0], [0], 2)[0]
        at_home = enc.encode(grid, [2], [2], 2)[0]
        moved_away = enc.encode(moved, [0], [0], 2)[0]
    assert torch.allclose(a, a_elsewhere, atol=1e-6)
    # The same tokens at another place of the grid carry another positional embedding.
    assert not torch.allclose(at_home, moved_away, atol=1e-4)


def test_overlap_pairs_match_the_same_grid_cells():
    # Window A at (1, 1), window B at (2, 0), size 3: shared rows 2-3, columns 1-2.
    ia, ib = overlap_pairs(1, 1, 2, 0, 3)
    cells_a = [(1 + i // 3, 1 + i % 3) for i in ia]
    cells_b = [(2 + i // 3, 0 + i % 3) for i in ib]
    assert cells_a == cells_b == [(2, 1), (2, 2), (3, 1), (3, 2)]


def test_overlapping_windows_always_overlap_and_fit():
    rng = np.random.default_rng(0)
    ta, la, tb, lb = overlapping_windows(7, 7, 4, 500, rng)
    assert ta.max() <= 3 and tb.max() <= 3 and ta.min() >= 0 and lb.min() >= 0
    assert all(overlap_pairs(*w, 4)[0] for w in zip(ta, la, tb, lb))


def test_peac_loss_trains_the_student_and_never_the_teacher():
    torch.manual_seed(0)
    net = PretrainModel(build_model(tiny_arch()), proj_dim=8)
    grid = net.student.grid_tokens(torch.randn(3, 3, 32, 32))
    loss, parts = peac_loss(net, grid, grid.detach(), 2, np.random.default_rng(0))
    assert set(parts) == {"global", "local"} and loss.item() > 0
    loss.backward()
    assert net.predictor[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.teacher.parameters())  # the teacher only follows


def test_ema_moves_the_teacher_towards_the_student():
    net = PretrainModel(build_model(tiny_arch()), proj_dim=8)
    with torch.no_grad():
        for p in net.student.parameters():
            p.add_(1.0)
    before = [t.clone() for t in net.teacher.parameters()]
    net.update_teacher(0.9)
    after = list(net.teacher.parameters())
    student = list(net.student.parameters())
    for b, a, s in zip(before, after, student):
        assert torch.allclose(a, 0.9 * b + 0.1 * s, atol=1e-6)


def test_isimed_loss_is_the_mse_between_distance_matrices():
    torch.manual_seed(0)
    net = PretrainModel(build_model(tiny_arch()), proj_dim=8)
    grid = net.student.grid_tokens(torch.randn(2, 3, 32, 32))
    rng = np.random.default_rng(3)
    loss, _ = isimed_loss(net, grid, 2, 4, torch.tensor([0.5, 2.0]), 8.0, 100.0, rng)
    # Recompute by hand with the same crops.
    rng = np.random.default_rng(3)
    tops, lefts = rng.integers(0, 3, (4, 2)), rng.integers(0, 3, (4, 2))
    embs = torch.stack([net.projector(net.student.encode(grid, tops[k], lefts[k], 2)[0]) for k in range(4)], 1)
    for b, mm in enumerate((0.5, 2.0)):
        centres = np.stack([tops[:, b], lefts[:, b]], 1) * 8.0
        phys = np.linalg.norm(centres[:, None] - centres[None], axis=-1) * mm / 100.0
        if b == 0:
            expected = []
        emb = torch.cdist(embs[b], embs[b]).detach().numpy()
        off = ~np.eye(4, dtype=bool)
        expected.append((emb[off] - phys[off]) ** 2)
    assert loss.item() == pytest.approx(float(np.concatenate(expected).mean()), rel=1e-4)


@pytest.mark.parametrize("method", ["peac", "isimed", "both"])
def test_pretrain_runs_resumes_and_feeds_a_classifier(tmp_path, method):
    cfg = PretrainConfig(method=method, arch=tiny_arch(), input_size=32, resize=36, epochs=1, batch_size=4,
                         out=str(tmp_path / "run"), progress=False, proj_dim=8, isimed_crops=3)
    first = pretrain(cfg, images(), log=lambda *_: None)
    assert len(first["history"]) == 1 and np.isfinite(first["history"][0]["loss"])
    cfg.epochs, cfg.resume = 2, True
    lines = []
    second = pretrain(cfg, images(), log=lines.append)
    assert lines[0].startswith("resumed") and len(second["history"]) == 2
    model = build_model(ArchConfig(**{**tiny_arch().to_dict(), "num_outputs": 3}))
    fresh = load_pretrained_backbone(model, second["checkpoint"])
    assert set(fresh) == {"vit.head.weight", "vit.head.bias", "target_scale", "target_shift"}
    state = torch.load(second["checkpoint"], weights_only=False)
    assert torch.equal(model.vit.blocks[0].attn.qkv.weight, state["model"]["vit.blocks.0.attn.qkv.weight"])


def test_pretrain_is_seeded(tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = PretrainConfig(method="peac", arch=tiny_arch(), input_size=32, resize=36, epochs=1, batch_size=4,
                             out=str(tmp_path / name), progress=False, proj_dim=8)
        runs.append(pretrain(cfg, images(), log=lambda *_: None)["history"][0]["loss"])
    assert runs[0] == pytest.approx(runs[1], rel=1e-6)


def test_no_images_is_a_clear_error(tmp_path):
    cfg = PretrainConfig(arch=tiny_arch(), out=str(tmp_path / "run"))
    with pytest.raises(PretrainDataError, match="no images"):
        pretrain(cfg, [])


def test_a_backbone_of_another_shape_is_refused(tmp_path):
    cfg = PretrainConfig(method="peac", arch=tiny_arch(), input_size=32, resize=36, epochs=1, batch_size=4,
                         out=str(tmp_path / "run"), progress=False, proj_dim=8)
    path = pretrain(cfg, images(4), log=lambda *_: None)["checkpoint"]
    other = build_model(ArchConfig(model="custom", patch_size=8, embed_dim=48, depth=2, num_heads=2, img_size=32))
    with pytest.raises(ValueError, match="does not fit"):
        load_pretrained_backbone(other, path)


def test_cli_folder_source_and_empty_folder(tmp_path, capsys):
    from PIL import Image

    from models.pretrain import main

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--images", str(empty), "--out", str(tmp_path / "r0"), "--no-progress"]) == 2
    assert "no images" in capsys.readouterr().err
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(images(4)):
        Image.fromarray(im.image).save(folder / f"{i}.png")
    (folder / "README.txt").write_text("not an image")
    code = main(["--images", str(folder), "--out", str(tmp_path / "r1"), "--no-progress", "--patch-size", "8",
                 "--embed-dim", "32", "--depth", "1", "--num-heads", "2", "--input-size", "32", "--resize", "36",
                 "--epochs", "1", "--batch-size", "2", "--method", "isimed", "--crops", "3"])
    assert code == 0 and (tmp_path / "r1" / "pretrained.pt").is_file()
