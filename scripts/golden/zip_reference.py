"""A store-only ZIP made by Python's own `zipfile`, for tests/unit/zip.test.ts (our reader must read
it, byte for byte), plus the expected contents and CRC-32s from `zlib.crc32`.

Run with Debian's python:  /usr/bin/python3 scripts/golden/zip_reference.py
Writes tests/golden/zip-python.zip and tests/golden/zip-python.json.
"""
import base64
import json
import os
import zipfile
import zlib

ENTRIES = [
    ("README.md", "# Hand-off\n\nstored, not deflated.\n".encode()),
    ("data/preferences.jsonl", b'{"prompt":"Hi","chosen":" there","rejected":" no"}\n'),
    ("data/empty.txt", b""),
    ("model/bytes.bin", bytes(range(256)) * 3),
    ("donn\u00e9es/caf\u00e9 \u2615.txt", "caf\u00e9 \u2615\n".encode()),
]


def main():
    here = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden")
    path = os.path.join(here, "zip-python.zip")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in ENTRIES:
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 17, 12, 30, 44))
            info.compress_type = zipfile.ZIP_STORED
            z.writestr(info, data)
    meta = {
        "description": "scripts/golden/zip_reference.py (Python zipfile, ZIP_STORED)",
        "entries": [
            {"name": n, "base64": base64.b64encode(d).decode(), "crc32": zlib.crc32(d)} for n, d in ENTRIES
        ],
        "crc32Check": zlib.crc32(b"123456789"),
    }
    with open(os.path.join(here, "zip-python.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
