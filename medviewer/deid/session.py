"""One export's secret and everything derived from it: UIDs, pseudonyms, the date shift.

Replacement UIDs are "2.25" UIDs (ITU-T X.667 | ISO/IEC 9834-8, as PS3.5 B.2
allows): the decimal value of a UUID whose 128 bits come from an HMAC-SHA256
of the original UID keyed with a per-export secret.  The same original always
maps to the same replacement within one export (PS3.15 E.1.1 note 3: UIDs must
stay consistent across the instances protected together), different exports
give unrelated replacements, and without the secret the mapping cannot be
reversed or confirmed by hashing guessed UIDs (E.1.1 note 3 warns against
unkeyed hashes).  The secret is never written to the export.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from medviewer.deid.options import DeidOptions

MAX_SHIFT_DAYS = 3650


class DeidSession:
    """Keyed mappings shared by every file of one export.

    Parameters
    ----------
    options : DeidOptions
    secret : bytes, optional
        The key; a fresh random 32-byte key by default.  Pass the same key to
        de-identify more files later with consistent UIDs and pseudonyms.
    """

    def __init__(self, options: DeidOptions | None = None, secret: bytes | None = None) -> None:
        self.options = options or DeidOptions()
        self.secret = secret if secret is not None else secrets.token_bytes(32)
        self._uids: dict[str, str] = {}
        if self.options.dates == "shift":
            if self.options.date_shift_days is not None:
                self.shift_days = int(self.options.date_shift_days)
            else:
                # Back in time, never zero: a forward shift could land in the future.
                self.shift_days = -1 - self._int("date-shift") % MAX_SHIFT_DAYS
        else:
            self.shift_days = 0

    def _digest(self, purpose: str, value: str) -> bytes:
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def _int(self, purpose: str) -> int:
        return int.from_bytes(self._digest(purpose, "")[:8], "big")

    def uid(self, original: str) -> str:
        """Return the replacement of a UID (the same one every time within this session)."""
        original = str(original).strip().rstrip("\x00")
        if not original:
            return original
        mapped = self._uids.get(original)
        if mapped is None:
            value = uuid.UUID(bytes=self._digest("uid", original)[:16], version=4)
            mapped = f"2.25.{value.int}"
            self._uids[original] = mapped
        return mapped

    @property
    def uid_count(self) -> int:
        """Number of distinct UIDs replaced so far."""
        return len(self._uids)

    def pseudonym(self, patient_key: str) -> str:
        """Return a stable pseudonymous Patient ID such as ``ANON7K2QX9ZB``."""
        if self.options.patient_id:
            return self.options.patient_id
        code = base64.b32encode(self._digest("patient", patient_key)[:5]).decode()
        return "ANON" + code

    def reference(self, value: str) -> str:
        """Return a short keyed digest of ``value`` (audit references to input files)."""
        return self._digest("reference", value)[:8].hex()
