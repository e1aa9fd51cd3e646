"""Whole-file checks of binary register files before they are parsed: a truncated SAS data file is refused.

A ``.sas7bdat`` file is a header followed by pages of one size; its header states the header length, the page
size and the page count (the layout documented in M. S. Shotwell, *SAS7BDAT Database Binary Format*, 2013,
from the R package ``sas7bdat``): the 32-byte magic number at offset 0; byte 32 = ``0x33`` for a 64-bit file
(page count 8 bytes instead of 4), byte 35 = ``0x33`` for 4 alignment bytes (``a1``) before the size fields;
byte 37 the byte order (1 little-endian); at ``196 + a1`` the header length, ``200 + a1`` the page size and
``204 + a1`` the page count. A whole file is exactly ``header + pages × page size`` bytes; a file cut short
(or grown) is refused (rule ``sas-file-size``), also when the pages still present happen to parse — ReadStat
reads a compressed file cut at 90 % without complaint.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pipeline.registers.files import DeliveryError

#: the first 32 bytes of every SAS7BDAT file
SAS7BDAT_MAGIC = bytes.fromhex("000000000000000000000000c2ea8160b31411cfbd92080009c7318c181f1011")


def sas7bdat_declared_size(head: bytes) -> int | None:
    """``header length + page size × page count`` from the first bytes of a SAS7BDAT file (None if ``head`` is
    not such a header)."""
    if len(head) < 216 or head[:32] != SAS7BDAT_MAGIC:
        return None
    a2 = 4 if head[32] == 0x33 else 0
    a1 = 4 if head[35] == 0x33 else 0
    order = "<" if head[37] == 0x01 else ">"
    header, page = struct.unpack(order + "ii", head[196 + a1:204 + a1])
    (pages,) = struct.unpack(order + ("q" if a2 else "i"), head[204 + a1:208 + a1 + a2])
    if header <= 0 or page <= 0 or pages < 0:
        return None
    return header + page * pages


def check_sas7bdat(path: Path) -> None:
    """Refuse a ``.sas7bdat`` file that is not one (rule ``sas-file-header``) or whose size differs from the size
    its header declares (rule ``sas-file-size``); the message names the file and the byte counts, never data."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(1024)
    declared = sas7bdat_declared_size(head)
    if declared is None:
        raise DeliveryError(f"{path.name}: rule sas-file-header: not a SAS data file (no SAS7BDAT header); truncated "
                            "or corrupt file?")
    size = path.stat().st_size
    if size != declared:
        raise DeliveryError(f"{path.name}: rule sas-file-size: the file has {size} bytes but its header declares "
                            f"{declared} (header + pages × page size); truncated or corrupt SAS data file")
