"""bench/device/slim_onnxruntime_gpu.py: the machine code of other GPU architectures is zeroed in a provider
library's fat binaries, the kept architecture's bytes and every header stay (checked on a small ELF64 file
built here in the real layout: section headers, a section-name table and a .nv_fatbin section)."""
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "device"))

from slim_onnxruntime_gpu import FATBIN_MAGIC, keep_one_architecture  # noqa: E402

ENTRY_HEADER = 64


def fatbin_entry(kind: int, arch: int, payload: bytes) -> bytes:
    header = bytearray(ENTRY_HEADER)
    struct.pack_into("<HHIQ", header, 0, kind, 0x0101, ENTRY_HEADER, len(payload))
    struct.pack_into("<I", header, 28, arch)
    return bytes(header) + payload


def elf_with_fatbin(entries: bytes) -> tuple[bytes, int]:
    """(ELF64 bytes, offset of the .nv_fatbin section) with sections: null, .shstrtab, .nv_fatbin."""
    container = struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(entries)) + entries
    names = b"\0.shstrtab\0.nv_fatbin\0"
    header_size = 64
    names_at, fatbin_at = header_size, header_size + len(names) + (-len(names)) % 8
    table_at = fatbin_at + len(container)
    body = bytearray(table_at)
    body[names_at:names_at + len(names)] = names
    body[fatbin_at:fatbin_at + len(container)] = container
    sections = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, names_at, len(names), 0, 0, 1, 0),
                struct.pack("<IIQQQQIIQQ", 11, 1, 0, 0, fatbin_at, len(container), 0, 0, 8, 0)]
    struct.pack_into("<4sBBB", body, 0, b"\x7fELF", 2, 1, 1)
    struct.pack_into("<Q", body, 0x28, table_at)
    struct.pack_into("<HHH", body, 0x3A, 64, len(sections), 1)
    return bytes(body) + b"".join(sections), fatbin_at


def test_other_architectures_are_zeroed_and_the_kept_one_is_untouched():
    sm80, sm90, ptx = b"\x11" * 40, b"\x22" * 24, b"\x33" * 16
    entries = fatbin_entry(2, 80, sm80) + fatbin_entry(2, 90, sm90) + fatbin_entry(1, 80, ptx)
    library, at = elf_with_fatbin(entries)
    slim, zeroed = keep_one_architecture(library, 90)
    assert zeroed == len(sm80) and len(slim) == len(library)
    first = at + 16 + ENTRY_HEADER
    assert slim[first:first + len(sm80)] == bytes(len(sm80))                   # sm_80 machine code: zeros
    second = first + len(sm80) + ENTRY_HEADER
    assert slim[second:second + len(sm90)] == sm90                              # sm_90 kept
    assert slim[second + len(sm90) + ENTRY_HEADER:][:len(ptx)] == ptx           # PTX is never zeroed
    assert slim[:first] == library[:first]                                      # headers unchanged
    assert slim[first + len(sm80):] == library[first + len(sm80):]
