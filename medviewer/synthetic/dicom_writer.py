"""Build and write the DICOM objects of synthetic studies with pydicom.

Each file is a complete Part 10 file: preamble, File Meta Information with the
SOP Class and Instance UIDs of the dataset, Explicit VR Little Endian and an
implementation UID, then a dataset with the patient, study, series,
equipment and image modules the IOD asks for.  Identifying attributes are
filled with the fake identity of :mod:`medviewer.synthetic.identity`,
including a private block and nested sequences, so that de-identification has
something to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
)

from medviewer import __version__
from medviewer.synthetic.identity import UID_PREFIX, Study, dicom_date

# A fixed implementation UID: it names the software that wrote the files, not the files.
IMPLEMENTATION_CLASS_UID = UID_PREFIX + "7716.1"
IMPLEMENTATION_VERSION_NAME = f"MEDVIEWER_{__version__.replace('.', '')}"[:16]
PRIVATE_CREATOR = "MEDVIEWER SYNTHETIC"
PRIVATE_GROUP = 0x0009

SOP_CLASSES = {
    "DX": DigitalXRayImageStorageForPresentation,
    "CR": ComputedRadiographyImageStorage,
    "CT": CTImageStorage,
}
BITS_STORED = 12
MAX_STORED = (1 << BITS_STORED) - 1


@dataclass(frozen=True)
class SeriesInfo:
    """Identity of one series.

    Attributes
    ----------
    uid : str
        (0020,000E) Series Instance UID.
    number : int
        (0020,0011) Series Number.
    modality : str
        ``"DX"``, ``"CR"`` or ``"CT"``.
    description : str
        (0008,103E) Series Description.
    """

    uid: str
    number: int
    modality: str
    description: str


def _ds(value: float, digits: int = 6) -> str:
    """Format a number as a DICOM DS string (at most 16 characters)."""
    text = f"{value:.{digits}g}"
    return text if len(text) <= 16 else f"{value:.6g}"


def _time(study: Study, minutes_later: int = 0) -> str:
    """Return the study time plus ``minutes_later`` as DICOM TM."""
    total = study.date.hour * 60 + study.date.minute + minutes_later
    hour, minute = divmod(min(total, 23 * 60 + 59), 60)
    return f"{hour:02d}{minute:02d}{study.date.second:02d}"


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    """Return File Meta Information for an Explicit VR Little Endian file."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _identity_modules(ds: Dataset, study: Study, series: SeriesInfo, description: str) -> None:
    """Fill the patient, study, series and equipment modules (the identifying part)."""
    patient = study.patient
    day = dicom_date(study.date.date())
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = day
    ds.InstanceCreationTime = _time(study, 2)
    ds.StudyDate = day
    ds.SeriesDate = day
    ds.AcquisitionDate = day
    ds.ContentDate = day
    ds.StudyTime = _time(study)
    ds.SeriesTime = _time(study, 1)
    ds.AcquisitionTime = _time(study, 1)
    ds.ContentTime = _time(study, 1)
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = study.manufacturer
    ds.InstitutionName = study.institution
    ds.InstitutionAddress = study.institution_address
    ds.ReferringPhysicianName = study.referring
    ds.StationName = study.station
    ds.StudyDescription = description
    ds.SeriesDescription = series.description
    ds.PerformingPhysicianName = study.performing
    ds.OperatorsName = study.operator
    ds.ManufacturerModelName = study.model

    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = study.institution
    ds.PatientBirthDate = dicom_date(patient.birth_date)
    ds.PatientSex = patient.sex
    other = Dataset()
    other.PatientID = patient.other_id
    other.IssuerOfPatientID = patient.other_issuer
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.PatientAge = f"{min(study.age, 999):03d}Y"
    ds.PatientSize = _ds(patient.height_m, 3)
    ds.PatientWeight = _ds(patient.weight_kg, 4)
    ds.PatientAddress = patient.address

    ds.DeviceSerialNumber = study.serial
    ds.SoftwareVersions = f"medviewer-synthetic {__version__}"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number

    # (0040,0275) Request Attributes Sequence repeats the accession number and nests
    # an issuer sequence: identifying values two levels deep.
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = study.institution
    request = Dataset()
    request.AccessionNumber = study.accession
    request.IssuerOfAccessionNumberSequence = Sequence([issuer])
    request.RequestedProcedureID = f"RP{study.accession[-6:]}"
    request.ScheduledProcedureStepID = f"SPS{study.accession[-6:]}"
    request.RequestedProcedureDescription = description
    request.ReasonForTheRequestedProcedure = f"Referred by {study.referring.split('^')[0]}"
    ds.RequestAttributesSequence = Sequence([request])


def _private_block(ds: Dataset, study: Study, labels: str) -> None:
    """Add a private block holding a fake hospital-internal identifier (and labels, if any)."""
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    patient = study.patient
    # A value that names the patient, hidden where a naive de-identifier will not look.
    block.add_new(0x01, "LO", f"HIS-{patient.other_id}-{patient.name.split('^')[0]}")
    block.add_new(0x02, "LO", "synthetic phantom")
    if labels:
        block.add_new(0x10, "LO", labels)


def _pixel_module(
    ds: Dataset, pixels: np.ndarray, photometric: str, window: tuple[float, float]
) -> None:
    """Fill the image pixel module from 16-bit unsigned stored values (12 bits used)."""
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise ValueError(f"expected a 2-D uint16 image, got {pixels.dtype} {pixels.shape}")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = (int(n) for n in pixels.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = _ds(window[0], 6)
    ds.WindowWidth = _ds(window[1], 6)
    ds.VOILUTFunction = "LINEAR"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.add_new(0x7FE00010, "OW", np.ascontiguousarray(pixels, dtype="<u2").tobytes())


def _finish(ds: Dataset, sop_class: str, sop_uid: str) -> Dataset:
    """Attach file meta and the SOP common module."""
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.file_meta = _file_meta(sop_class, sop_uid)
    return ds


def radiograph_dataset(
    study: Study,
    series: SeriesInfo,
    sop_uid: str,
    pixels: np.ndarray,
    *,
    photometric: str,
    window: tuple[float, float],
    view: str,
    pixel_spacing_mm: float,
    labels: str,
    kvp: float,
    exposure_mas: float,
) -> Dataset:
    """Build a DX (for presentation) or CR chest radiograph.

    Parameters
    ----------
    study, series : Study, SeriesInfo
        Identity; ``series.modality`` chooses DX or CR.
    sop_uid : str
        (0008,0018) SOP Instance UID.
    pixels : ndarray of uint16
        Stored values (0..4095), already inverted for MONOCHROME1.
    photometric : {"MONOCHROME1", "MONOCHROME2"}
    window : (float, float)
        (0028,1050) Window Center and (0028,1051) Window Width, in stored values
        (the rescale is the identity).
    view : {"PA", "AP"}
        (0018,5101) View Position.
    pixel_spacing_mm : float
        Written as both (0028,0030) Pixel Spacing and (0018,1164) Imager Pixel Spacing.
    labels : str
        Findings (``|``-separated), kept in the private block.
    kvp, exposure_mas : float
        Technique factors.
    """
    modality = series.modality
    sop_class = SOP_CLASSES[modality]
    ds = Dataset()
    description = "XR CHEST 1 VIEW" if view == "AP" else "XR CHEST PA"
    _identity_modules(ds, study, series, description)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view
    ds.PatientOrientation = ["L", "F"]  # rows run to the patient's left, columns to the feet
    ds.ImageLaterality = "U"
    ds.KVP = _ds(kvp, 4)
    ds.Exposure = int(round(exposure_mas))
    ds.ExposureTime = int(round(exposure_mas / 0.32))  # ms at a 320 mA tube current
    ds.XRayTubeCurrent = 320
    ds.DistanceSourceToDetector = "1800" if view == "PA" else "1000"
    ds.ImagerPixelSpacing = [_ds(pixel_spacing_mm, 4)] * 2
    ds.PixelSpacing = [_ds(pixel_spacing_mm, 4)] * 2
    ds.InstanceNumber = 1
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.DetectorType = "SCINTILLATOR"
        ds.PixelIntensityRelationship = "LOG"
        # -1: higher stored values mean less x-ray intensity (brighter bone) in MONOCHROME2.
        ds.PixelIntensityRelationshipSign = -1 if photometric == "MONOCHROME2" else 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.RescaleType = "US"
    _pixel_module(ds, pixels, photometric, window)
    _private_block(ds, study, labels)
    return _finish(ds, sop_class, sop_uid)


def ct_slice_dataset(
    study: Study,
    series: SeriesInfo,
    sop_uid: str,
    pixels: np.ndarray,
    *,
    frame_of_reference_uid: str,
    instance_number: int,
    position: tuple[float, float, float],
    pixel_spacing_mm: float,
    slice_thickness_mm: float,
    spacing_between_slices_mm: float,
) -> Dataset:
    """Build one axial CT Image Storage slice.

    Parameters
    ----------
    study, series : Study, SeriesInfo
    sop_uid : str
    pixels : ndarray of uint16
        Stored values, HU + 1024 (written with Rescale Intercept -1024).
    frame_of_reference_uid : str
        (0020,0052), shared by every slice of the series.
    instance_number : int
        (0020,0013) Instance Number.
    position : (float, float, float)
        (0020,0032) Image Position (Patient) of the first pixel, mm.
    pixel_spacing_mm, slice_thickness_mm, spacing_between_slices_mm : float
        (0028,0030), (0018,0050) and the nominal (0018,0088).
    """
    ds = Dataset()
    _identity_modules(ds, study, series, "CT CHEST WITHOUT CONTRAST")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = _ds(slice_thickness_mm, 4)
    ds.SpacingBetweenSlices = _ds(spacing_between_slices_mm, 4)
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = _ds(pixel_spacing_mm * int(pixels.shape[1]), 5)
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.ExposureTime = 500
    ds.XRayTubeCurrent = 200
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [_ds(p, 8) for p in position]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(position[2], 8)
    ds.PixelSpacing = [_ds(pixel_spacing_mm, 6)] * 2
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    # The VOI window applies after the rescale, so it is in HU: a soft-tissue window.
    _pixel_module(ds, pixels, "MONOCHROME2", (40.0, 400.0))
    _private_block(ds, study, "")
    return _finish(ds, SOP_CLASSES["CT"], sop_uid)


def write_dataset(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as a DICOM Part 10 file, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
