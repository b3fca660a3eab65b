"""Volumes and multiplanar reformats: geometry against known orientations, refusals in words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import helpers_dicom as h
from medviewer.dicom.pixels import decode
from medviewer.dicom.sources import FileRef
from medviewer.dicom.volume import VolumeError, build_volume
from medviewer.display.mpr import cross_reference, plane_count, plane_name, reformat
from medviewer.display.orientation import edge_labels


def write_stack(folder: Path, positions, orientation=(1, 0, 0, 0, 1, 0), size=(20, 16),
                spacing=(0.5, 0.8), value=None):
    """Write slices whose pixel value encodes (slice, row, column) for exact checks."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = size
    paths = []
    for k, pos in enumerate(positions):
        if value is None:
            rr, cc = np.mgrid[:rows, :cols]
            pixels = (k * 1000 + rr * 40 + cc).astype(np.uint16)
        else:
            pixels = value(k)
        ds = h.make_image(pixels, modality="CT", position=pos, orientation=orientation,
                          pixel_spacing=spacing, rescale=(1.0, -1024.0), seed=k,
                          series_uid="1.2.3.4.5", instance_number=k + 1)
        paths.append(h.write(ds, folder / f"s{k:03d}.dcm"))
    return [decode(FileRef.for_path(p)) for p in paths]


def labels(reformatted):
    e = edge_labels(reformatted.orientation)
    return (e.left, e.right, e.top, e.bottom)


def test_axial_stack_reformats_with_head_up_and_known_markers(tmp_path):
    images = write_stack(tmp_path / "ax", [(0, 0, 3.0 * k) for k in range(5)])
    volume = build_volume(images[::-1])  # any order in, spatial order out
    assert volume.shape == (5, 20, 16) and volume.spacing == (3.0, 0.5, 0.8)
    assert volume.warnings == []
    assert [plane_name(volume, p) for p in ("slice", "row", "column")] == \
        ["axial", "coronal", "sagittal"]
    axial = reformat(volume, "slice", 2)
    assert labels(axial) == ("R", "L", "A", "P")
    assert volume.to_modality(axial.pixels[3, 4]) == 2 * 1000 + 3 * 40 + 4 - 1024
    coronal = reformat(volume, "row", 7)
    assert coronal.pixels.shape == (5, 16) and coronal.spacing == (3.0, 0.8)
    assert labels(coronal) == ("R", "L", "H", "F")
    # Head up: the top screen row is the highest slice.
    assert coronal.pixels[0, 4] == images[4].stored_frame(0)[7, 4]
    sagittal = reformat(volume, "column", 5)
    assert labels(sagittal) == ("A", "P", "H", "F") and sagittal.spacing == (3.0, 0.5)
    assert sagittal.pixels[-1, 9] == images[0].stored_frame(0)[9, 5]
    # Patient positions round-trip through the voxel grid.
    point = volume.position((2, 3, 4))
    assert np.allclose(point, images[2].position + np.array([4 * 0.8, 3 * 0.5, 0]))
    assert np.allclose(volume.index_of(point), (2, 3, 4))


def test_cross_reference_lines_meet_where_the_planes_cross(tmp_path):
    volume = build_volume(write_stack(tmp_path / "ax", [(0, 0, 2.0 * k) for k in range(6)]))
    assert cross_reference(volume, "slice", "row", 7) == ("h", 7.5)
    assert cross_reference(volume, "slice", "column", 3) == ("v", 3.5)
    assert cross_reference(volume, "row", "slice", 0) == ("h", 5.5)  # lowest slice at the bottom
    assert cross_reference(volume, "row", "column", 4) == ("v", 4.5)
    assert cross_reference(volume, "column", "row", 9) == ("v", 9.5)
    assert cross_reference(volume, "row", "row", 1) is None


def test_thick_slab_mip_and_mean(tmp_path):
    images = write_stack(tmp_path / "ax", [(0, 0, 1.0 * k) for k in range(7)])
    volume = build_volume(images)
    mip = reformat(volume, "slice", 3, thickness=3, mode="mip")
    assert np.array_equal(mip.pixels, images[4].stored_frame(0))  # value grows with k
    mean = reformat(volume, "slice", 3, thickness=3, mode="mean")
    assert np.allclose(mean.pixels, images[3].stored_frame(0))
    minip = reformat(volume, "row", 2, thickness=5, mode="minip")
    assert minip.pixels.shape == (7, 16)
    with pytest.raises(ValueError, match="slab mode"):
        reformat(volume, "slice", 3, thickness=3, mode="sum")


def test_uneven_spacing_is_resampled_and_said(tmp_path):
    images = write_stack(tmp_path / "ax", [(0, 0, z) for z in (0.0, 2.0, 4.0, 8.0, 10.0)])
    volume = build_volume(images)
    assert volume.shape[0] == 6 and volume.spacing[0] == 2.0
    assert any("uneven slice spacing" in w for w in volume.warnings)
    # The slice at z = 6 mm is halfway between the slices at 4 and 8 mm.
    a, b = images[2].stored_frame(0).astype(float), images[3].stored_frame(0).astype(float)
    assert np.allclose(volume.voxels[3], (a + b) / 2, atol=0.51)


def test_refusals_are_in_words(tmp_path):
    with pytest.raises(VolumeError, match="at least 3 slices"):
        build_volume(write_stack(tmp_path / "two", [(0, 0, 0), (0, 0, 1)]))
    mixed = write_stack(tmp_path / "a", [(0, 0, 0), (0, 0, 1)]) + \
        write_stack(tmp_path / "b", [(0, 0, 2)], orientation=(1, 0, 0, 0, 0, -1))
    with pytest.raises(VolumeError, match="different orientations"):
        build_volume(mixed)
    same = write_stack(tmp_path / "c", [(0, 0, 0), (0, 0, 1), (0, 0, 1)])
    with pytest.raises(VolumeError, match="share a position"):
        build_volume(same)
    sizes = write_stack(tmp_path / "d", [(0, 0, 0), (0, 0, 1)]) + \
        write_stack(tmp_path / "e", [(0, 0, 2)], size=(10, 10))
    with pytest.raises(VolumeError, match="differ in size"):
        build_volume(sizes)


@pytest.mark.shared_data
def test_ge_head_ct_tilt_is_corrected_and_planes_are_where_the_head_is(shared_dicom_samples):
    folder = shared_dicom_samples / "dcm_qa_ct-GE-head-CT-series"
    paths = sorted(p for p in folder.rglob("*.dcm"))
    assert len(paths) == 28
    images = [decode(FileRef.for_path(p)) for p in paths]
    volume = build_volume(images)
    text = " ".join(volume.warnings)
    assert "gantry tilt of 18.5 degrees corrected" in text
    assert "uneven slice spacing" in text
    assert plane_name(volume, "slice") == "oblique axial" or plane_name(volume, "slice") == "axial"
    coronal = reformat(volume, "row", volume.shape[1] // 2)
    sagittal = reformat(volume, "column", volume.shape[2] // 2)
    # Markers: the tilted axial's reformats read head at the top, R/L and A/P at the sides.
    assert labels(sagittal)[2].startswith("H") and labels(sagittal)[0][0] == "A"
    assert labels(coronal)[2][0] in "HA" and labels(coronal)[:2] == ("R", "L")
    # The brain is in the middle of the sagittal reformat: bone and soft tissue there,
    # air above the vertex at the top row.
    hu = volume.to_modality(sagittal.pixels)
    assert hu[0].mean() < -500  # above the head: air
    centre = hu[hu.shape[0] // 2, hu.shape[1] // 4: 3 * hu.shape[1] // 4]
    assert np.median(centre) > 0  # brain (about 30 HU)
    # De-shearing moved content: the first slice is unchanged, the last is shifted.
    assert np.array_equal(volume.voxels[0], images[np.argsort(
        [im.position @ volume.normal for im in images])[0]].stored_frame(0))


@pytest.mark.shared_data
def test_six_slice_sagittal_mr_reformats(shared_dicom_samples):
    folder = shared_dicom_samples / "dwv-tests-data"
    images = [decode(FileRef.for_path(p)) for p in sorted(folder.glob("bbmri-*.dcm"))]
    assert len(images) == 6
    volume = build_volume(images)
    assert plane_name(volume, "slice").endswith("sagittal")
    assert volume.spacing[0] == pytest.approx(9.0, abs=0.05)
    assert {plane_name(volume, "row"), plane_name(volume, "column")} == {"axial", "coronal"} or \
        {plane_name(volume, "row").split()[-1], plane_name(volume, "column").split()[-1]} == \
        {"axial", "coronal"}
    assert plane_count(volume, "slice") == 6
    native = labels(reformat(volume, "slice", 2))
    assert native[0][0] == "A" and native[2][0] == "H"  # sagittal: anterior left, head up
    axial = reformat(volume, "row" if plane_name(volume, "row").endswith("axial") else "column", 128)
    assert axial.pixels.shape[0] == 6
