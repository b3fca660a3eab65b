"""Label tables: ChestX-ray14's Data_Entry_2017 format and plain ``path,labels`` CSVs."""

from __future__ import annotations

import gzip
import os

import pytest

from medviewer.errors import LabelTableError
from medviewer.labels.table import read_label_table

DATA_ENTRY = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
    "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,\n"
    "00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143,\n"
    "00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171,\n"
)


def test_data_entry_2017_by_file_name(tmp_path):
    path = tmp_path / "Data_Entry_2017.csv"
    path.write_text(DATA_ENTRY)
    table = read_label_table(path)
    assert len(table) == 3
    entry = table.lookup("/anywhere/images_001/00000001_001.png")
    assert entry.labels == ("Cardiomegaly", "Emphysema")
    assert entry.patient_id == "1"
    assert table.lookup("/x/00000002_000.png").labels == ("No Finding",)
    assert table.lookup("/x/00000003_000.png") is None
    assert table.source == path.resolve()


def test_gzipped_table_with_bom(tmp_path):
    path = tmp_path / "Data_Entry_2017_v2020.csv.gz"
    path.write_bytes(gzip.compress(("\ufeff" + DATA_ENTRY).encode("utf-8")))
    table = read_label_table(path)
    assert table.lookup("00000001_000.png").labels == ("Cardiomegaly",)


def test_path_labels_csv_matches_relative_and_absolute_paths(tmp_path):
    (tmp_path / "masks").mkdir()
    path = tmp_path / "labels.csv"
    abs_image = tmp_path / "elsewhere" / "c.png"
    path.write_text("path,labels,patient_id,mask_path\n"
                    "train/a.png, Opacity | Cardiomegaly ,P1,masks/a.png\n"
                    "valid/a.png,,P2,\n"
                    f"{abs_image},Emphysema|Emphysema,P3,/abs/mask.png\n")
    table = read_label_table(path)
    first = table.lookup(str(tmp_path / "train" / "a.png"))
    assert first.labels == ("Cardiomegaly", "Opacity")  # trimmed, sorted
    assert first.patient_id == "P1"
    assert first.mask_path == str(tmp_path / "masks" / "a.png")
    assert table.lookup(str(tmp_path / "valid" / "a.png")).labels == ()
    assert table.lookup(os.path.join(str(tmp_path), "train", ".", "a.png")) is first  # normalised
    third = table.lookup(str(abs_image))
    assert third.labels == ("Emphysema",) and third.mask_path == "/abs/mask.png"


def test_a_file_name_shared_by_two_rows_does_not_match_by_name(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("path,labels\ntrain/a.png,X\nvalid/a.png,Y\nunique/b.png,Z\n")
    table = read_label_table(path)
    assert table.lookup("/other/root/a.png") is None  # ambiguous: neither X nor Y
    assert table.lookup("/other/root/b.png").labels == ("Z",)
    assert table.lookup(str(tmp_path / "valid" / "a.png")).labels == ("Y",)


def test_zip_members_match_by_member_file_name(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("filename,findings\nimg7.png,Mass\n")
    table = read_label_table(path)
    assert table.lookup("/data/batch.zip!inner/dir/img7.png").labels == ("Mass",)


def test_blank_lines_are_ignored(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("path,labels\n\na.png,A\n , \n\nb.png,B\n")
    assert len(read_label_table(path)) == 2


@pytest.mark.parametrize("content, match", [
    ("", "empty"),
    ("name,diagnosis\na.png,X\n", "no path and no labels column .*its columns: name, diagnosis"),
    ("path,labels\na.png\n", "line 2"),
])
def test_malformed_tables_are_label_table_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(LabelTableError, match=match) as info:
        read_label_table(path)
    assert info.value.path == str(path.resolve())


def test_missing_table_is_a_label_table_error(tmp_path):
    with pytest.raises(LabelTableError, match="cannot read"):
        read_label_table(tmp_path / "absent.csv")


def test_a_finding_column_is_read_like_findings(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("path,finding\na.png,Cardiomegaly\nb.png,No Finding\n")
    table = read_label_table(path)
    assert len(table) == 2
    assert "Cardiomegaly" in table.lookup(str(tmp_path / "a.png")).labels


def test_a_table_without_a_labels_column_names_the_accepted_ones(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("path,diagnosis\na.png,X\n")
    with pytest.raises(LabelTableError) as info:
        read_label_table(path)
    message = str(info.value)
    assert "no labels column" in message and "'finding'" in message and "'findings'" in message
