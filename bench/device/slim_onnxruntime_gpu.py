"""Pack an onnxruntime-gpu wheel for one GPU architecture, small enough to carry to a GPU machine in parts.

    python bench/device/slim_onnxruntime_gpu.py WHEEL OUT_DIR [--sm 90] [--part-mb 35]

The onnxruntime-gpu 1.31.1 wheel is 256 MB (its CUDA provider library alone 284 MB unpacked: machine code
for sm_75, 80, 86, 89, 90 and 120, no PTX). The GPU machine this project is sometimes lent (an H200, sm_90)
takes at most 64 MiB per transfer, and has no network. This writes OUT_DIR/onnxruntime_sm<SM>.tar.xz.<aa, ab,
...> (`--part-mb` each) holding the unpacked package with the machine code of every other architecture
zeroed: the fat-binary headers stay, so the CUDA runtime still picks the sm_<SM> code, and the zeros compress
away (about 70 MB in all). TensorRT's provider library is left out (TensorRT itself is several GB).
On the GPU machine: `cat PARTS | python3 -c "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer,
mode='r|xz').extractall(SITE, filter='data')"`, then `ORT_SITE=SITE PY=python3 bash bench/device_check.sh`.
A measuring aid only: never ship such a package.
"""
from __future__ import annotations

import argparse
import io
import lzma
import struct
import sys
import tarfile
import zipfile
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
MACHINE_CODE = 2          # fat-binary entry kind: 1 = PTX, 2 = machine code (cubin)


def elf_section(data: bytes, wanted: str) -> tuple[int, int]:
    """(file offset, size) of the ELF64 section named `wanted`."""
    table, = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", data, table + i * entry_size) for i in range(count)]
    names = sections[names_index][4]
    for name, _, _, _, offset, size in sections:
        if data[names + name:data.index(b"\0", names + name)].decode() == wanted:
            return offset, size
    raise ValueError(f"no {wanted} section")


def keep_one_architecture(library: bytes, sm: int) -> tuple[bytes, int]:
    """`library` with the payload of every machine-code entry for another architecture than `sm` zeroed;
    (new bytes, bytes zeroed). Entry header: kind u16, version u16, header size u32, padded payload size u64,
    ..., architecture u32 at offset 28."""
    out = bytearray(library)
    start, size = elf_section(library, ".nv_fatbin")
    position, end, zeroed = start, start + size, 0
    while position < end:
        magic, _, header, body = struct.unpack_from("<IHHQ", out, position)
        if magic != FATBIN_MAGIC:
            position += 8      # containers are 8-byte aligned
            continue
        entry, stop = position + header, position + header + body
        while entry < stop:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", out, entry)
            arch, = struct.unpack_from("<I", out, entry + 28)
            if kind == MACHINE_CODE and arch != sm:
                out[entry + entry_header:entry + entry_header + payload] = bytes(payload)
                zeroed += payload
            entry += entry_header + payload
        position = stop
    return bytes(out), zeroed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--sm", type=int, default=90, help="the GPU's architecture (H100/H200: 90)")
    parser.add_argument("--part-mb", type=float, default=35.0)
    args = parser.parse_args(argv)
    packed = io.BytesIO()
    xz = lzma.LZMAFile(packed, "wb", preset=6)
    with zipfile.ZipFile(args.wheel) as wheel, tarfile.open(fileobj=xz, mode="w|") as tar:
        for item in wheel.infolist():
            if item.is_dir() or item.filename.endswith("libonnxruntime_providers_tensorrt.so"):
                continue
            data = wheel.read(item)
            if item.filename.endswith("libonnxruntime_providers_cuda.so"):
                data, zeroed = keep_one_architecture(data, args.sm)
                print(f"{item.filename}: {zeroed / 1e6:.0f} of {len(data) / 1e6:.0f} MB zeroed (not sm_{args.sm})")
            info = tarfile.TarInfo(item.filename)
            info.size, info.mode = len(data), 0o755 if item.filename.endswith(".so") else 0o644
            tar.addfile(info, io.BytesIO(data))
    xz.close()     # the tar stream does not close the file it was given
    blob = packed.getvalue()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    step = int(args.part_mb * 1e6)
    for number, begin in enumerate(range(0, len(blob), step)):
        suffix = chr(ord("a") + number // 26) + chr(ord("a") + number % 26)
        part = args.out_dir / f"onnxruntime_sm{args.sm}.tar.xz.{suffix}"
        part.write_bytes(blob[begin:begin + step])
        print(f"{part}: {min(step, len(blob) - begin) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
