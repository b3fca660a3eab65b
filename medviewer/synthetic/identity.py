"""Make fake, seeded identities for synthetic patients, studies and equipment.

Every value here is invented from small fixed pools, so the generated files
carry realistic-looking identifying data (names, IDs, dates, addresses,
physicians, institutions) that de-identification code can be tested on,
without any real person behind them.  UIDs are derived from the seed, so the
same seed gives the same UIDs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydicom.uid import generate_uid

# Root of every UID we derive (pydicom's, which it allows for generated UIDs).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."

FAMILY_NAMES = (
    "DOE", "ROE", "SMITH", "JOHNSON", "MILLER", "GARCIA", "MARTINEZ", "NGUYEN", "KIM",
    "PATEL", "SINGH", "MULLER", "SCHMIDT", "ROSSI", "BIANCHI", "DUBOIS", "MOREAU",
    "JANSEN", "DE VRIES", "NOVAK", "KOWALSKI", "SILVA", "SANTOS", "OKAFOR", "MENSAH",
    "TANAKA", "SATO", "CHEN", "WANG", "LI", "IVANOV", "PETROV", "HANSEN", "LARSEN",
    "OBRIEN", "MURPHY", "WALSH", "COHEN", "LEVI", "HASSAN", "RAHMAN", "KHAN", "LOPEZ",
    "HERNANDEZ", "BROWN", "TAYLOR", "WILSON", "EVANS", "THOMAS", "MOORE",
)
FEMALE_GIVEN = (
    "JANE", "MARY", "ANNA", "MARIA", "SOPHIE", "EMMA", "OLIVIA", "CHLOE", "FATIMA",
    "AISHA", "YUKI", "MEI", "ELENA", "IRINA", "INGRID", "CLARA", "LUCIA", "NORA",
    "GRACE", "HANNAH", "LEILA", "PRIYA", "AMARA", "ZOE", "EVA",
)
MALE_GIVEN = (
    "JOHN", "JAMES", "DAVID", "MICHAEL", "PETER", "PAUL", "MARK", "LUCAS", "MATEO",
    "AHMED", "OMAR", "KENJI", "WEI", "IVAN", "SERGEI", "LARS", "HANS", "PIERRE",
    "MARCO", "TOMAS", "KWAME", "RAJ", "SAMUEL", "DANIEL", "NOAH",
)
STREETS = (
    "Elm Street", "Oak Avenue", "Maple Road", "Cedar Lane", "Station Road", "High Street",
    "Mill Lane", "Church Street", "Park Avenue", "River Road", "Hill Crescent", "Lake Drive",
)
CITIES = (
    "Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Kingsport",
    "Millbrook", "Ashford", "Westbury", "Northgate",
)
INSTITUTIONS = (
    ("Riverside General Hospital", "RGH"),
    ("Lakeview Medical Center", "LMC"),
    ("St. Aurelia University Hospital", "SAU"),
    ("Northgate Community Clinic", "NCC"),
    ("Fairview Regional Hospital", "FRH"),
)
MANUFACTURERS = (
    ("Acme Imaging", "AcmeDR 3000", "AcmeCT 64"),
    ("Synthex Medical", "SynthexRad X1", "SynthexScan 128"),
    ("Phantom Systems", "PhantomDR Pro", "PhantomCT Edge"),
)


def derive_uid(seed: int, *parts: object) -> str:
    """Return a UID that depends only on ``seed`` and ``parts``.

    Parameters
    ----------
    seed : int
        The dataset seed.
    *parts
        Anything that names the object uniquely within the dataset, such as
        ``("series", 3, 1)``; converted to strings.

    Returns
    -------
    str
        A valid DICOM UID (at most 64 characters) under :data:`UID_PREFIX`.
    """
    entropy = ["medviewer-synthetic", str(int(seed)), *(str(p) for p in parts)]
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=entropy)


def person_name(rng: np.random.Generator, female: bool, *, title: str = "") -> str:
    """Return a DICOM PN value ``FAMILY^GIVEN^M`` (with a prefix such as ``DR`` if given)."""
    family = FAMILY_NAMES[int(rng.integers(len(FAMILY_NAMES)))]
    pool = FEMALE_GIVEN if female else MALE_GIVEN
    given = pool[int(rng.integers(len(pool)))]
    middle = chr(ord("A") + int(rng.integers(26)))
    if title:
        return f"{family}^{given}^{middle}^{title}"
    return f"{family}^{given}^{middle}"


def dicom_date(day: dt.date) -> str:
    """Format a date as DICOM DA (``YYYYMMDD``)."""
    return day.strftime("%Y%m%d")


@dataclass(frozen=True)
class Patient:
    """A fake patient.

    Attributes
    ----------
    number : int
        1-based running number (the ChestX-ray14-style ``Patient ID``).
    patient_id : str
        (0010,0020) Patient ID, a fake medical record number.
    other_id, other_issuer : str
        A second fake ID and its issuer, written into
        (0010,1002) Other Patient IDs Sequence.
    name : str
        (0010,0010) Patient's Name, e.g. ``DOE^JANE^M``.
    sex : str
        ``"F"`` or ``"M"``.
    birth_date : datetime.date
    height_m, weight_kg : float
        Habitus; the weight goes into (0010,1030) Patient's Weight.
    fatness : float
        0 (thin) to 1 (obese), derived from the body-mass index.
    address : str
        (0010,1040) Patient's Address.
    """

    number: int
    patient_id: str
    other_id: str
    other_issuer: str
    name: str
    sex: str
    birth_date: dt.date
    height_m: float
    weight_kg: float
    fatness: float
    address: str

    @property
    def female(self) -> bool:
        """Whether the patient is female."""
        return self.sex == "F"

    def age_on(self, day: dt.date) -> int:
        """Return the age in whole years on ``day``."""
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


def make_patient(rng: np.random.Generator, number: int) -> Patient:
    """Draw a fake patient with a plausible habitus.

    The body-mass index is log-normal around 26 kg/m^2 (17-45), so weights
    range from thin to obese; CT phantoms size the body from it.
    """
    female = bool(rng.random() < 0.5)
    height = float(np.clip(rng.normal(1.63 if female else 1.76, 0.07), 1.45, 2.0))
    bmi = float(np.clip(np.exp(rng.normal(np.log(26.0), 0.18)), 17.0, 45.0))
    weight = round(bmi * height * height, 1)
    age_days = int(rng.integers(20 * 365, 90 * 365))
    # Birth dates are relative to a fixed reference day, never "today": same seed, same files.
    birth = dt.date(2020, 1, 1) - dt.timedelta(days=age_days)
    # The running number makes IDs unique; the random prefix makes them look less tidy.
    mrn = f"MRN{int(rng.integers(10, 100))}{number:06d}"
    other = f"{int(rng.integers(10**8, 10**9))}"
    issuer = INSTITUTIONS[int(rng.integers(len(INSTITUTIONS)))][1]
    street = STREETS[int(rng.integers(len(STREETS)))]
    city = CITIES[int(rng.integers(len(CITIES)))]
    address = f"{int(rng.integers(1, 200))} {street}, {city}"
    return Patient(
        number=number,
        patient_id=mrn,
        other_id=other,
        other_issuer=f"{issuer}-LEGACY",
        name=person_name(rng, female),
        sex="F" if female else "M",
        birth_date=birth,
        height_m=round(height, 2),
        weight_kg=weight,
        fatness=float(np.clip((bmi - 18.0) / 20.0, 0.0, 1.0)),
        address=address,
    )


@dataclass(frozen=True)
class Study:
    """A fake imaging study of one patient.

    Attributes
    ----------
    patient : Patient
    follow_up : int
        0 for the patient's first study, 1 for the second (``Follow-up #``).
    study_uid : str
        (0020,000D) Study Instance UID.
    date : datetime.datetime
        Study date and time.
    accession : str
        (0008,0050) Accession Number.
    study_id : str
        (0020,0010) Study ID.
    institution, institution_address : str
    referring, performing, operator : str
        Physician and operator names (PN).
    station, serial, manufacturer, model : str
        Equipment identification.
    """

    patient: Patient
    follow_up: int
    study_uid: str
    date: dt.datetime
    accession: str
    study_id: str
    institution: str
    institution_address: str
    referring: str
    performing: str
    operator: str
    station: str
    serial: str
    manufacturer: str
    model: str

    @property
    def age(self) -> int:
        """Patient age in years on the study date."""
        return self.patient.age_on(self.date.date())


def make_study(
    rng: np.random.Generator,
    seed: int,
    patient: Patient,
    follow_up: int,
    *,
    ct: bool,
    after: dt.datetime | None = None,
) -> Study:
    """Draw a fake study for ``patient``.

    Parameters
    ----------
    rng : numpy.random.Generator
    seed : int
        Dataset seed (for the Study Instance UID).
    patient : Patient
    follow_up : int
        0-based index of this study among the patient's studies.
    ct : bool
        Whether it is a CT study (chooses the equipment model and station).
    after : datetime.datetime, optional
        The date of the patient's previous study; a follow-up comes later.
    """
    if after is None:
        day = dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 5 * 365)))
    else:
        day = after.date() + dt.timedelta(days=int(rng.integers(30, 700)))
    when = dt.datetime(day.year, day.month, day.day, int(rng.integers(7, 19)),
                       int(rng.integers(60)), int(rng.integers(60)))
    institution, code = INSTITUTIONS[int(rng.integers(len(INSTITUTIONS)))]
    street = STREETS[int(rng.integers(len(STREETS)))]
    city = CITIES[int(rng.integers(len(CITIES)))]
    maker, dx_model, ct_model = MANUFACTURERS[int(rng.integers(len(MANUFACTURERS)))]
    room = int(rng.integers(1, 6))
    return Study(
        patient=patient,
        follow_up=follow_up,
        study_uid=derive_uid(seed, "study", patient.number, follow_up),
        date=when,
        accession=f"{code}{int(rng.integers(10**7, 10**8))}",
        study_id=f"{int(rng.integers(1, 10**5))}",
        institution=institution,
        institution_address=f"{int(rng.integers(1, 500))} {street}, {city}",
        referring=person_name(rng, bool(rng.random() < 0.5), title="DR"),
        performing=person_name(rng, bool(rng.random() < 0.5), title="DR"),
        operator=person_name(rng, bool(rng.random() < 0.5)),
        station=f"{code}{'CT' if ct else 'DX'}{room:02d}",
        serial=f"SN{int(rng.integers(10**5, 10**6))}",
        manufacturer=maker,
        model=ct_model if ct else dx_model,
    )
