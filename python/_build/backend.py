"""A PEP 517 build backend for the tilelli Python package, with no dependencies beyond the standard
library, so that `pip install ./python` needs no index (setuptools would be fetched into pip's
isolated build environment, which fails offline).

It builds a pure-Python wheel (py3-none-any) of the ``tilelli/`` folder and an sdist of the project,
reading the name and version from pyproject.toml's [project] table. Editable installs are not
offered: use ``PYTHONPATH=python`` for that.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "tilelli"


def _project() -> dict:
    """name, version, description, requires-python from pyproject.toml (the few string keys used here)."""
    text = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    section = text.split("[project]", 1)[1].split("\n[", 1)[0]
    out = {}
    for key in ("name", "version", "description", "requires-python"):
        m = re.search(rf'^{re.escape(key)}\s*=\s*"([^"]*)"', section, re.M)
        if m:
            out[key] = m.group(1)
    return out


def _metadata() -> str:
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p.get('description', '')}", "License: MIT"]
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    lines.append("Provides-Extra: test")
    lines.append('Requires-Dist: pytest ; extra == "test"')
    readme = os.path.join(ROOT, "README.md")
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        return "\n".join(lines) + "\n\n" + open(readme, encoding="utf-8").read()
    return "\n".join(lines) + "\n"


def _files() -> list:
    """(path in the archive, path on disk) of the package's sources, sorted."""
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for d, dirs, files in os.walk(base):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py") or f == "py.typed":
                full = os.path.join(d, f)
                out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def _dist_info() -> str:
    p = _project()
    return f"{p['name']}-{p['version']}.dist-info"


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, _dist_info())
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as fh:
        fh.write(_metadata())
    return _dist_info()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    name = f"{p['name']}-{p['version']}-py3-none-any.whl"
    info = _dist_info()
    entries = [(arc, open(full, "rb").read()) for arc, full in _files()]
    entries.append((f"{info}/METADATA", _metadata().encode("utf-8")))
    entries.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tilelli _build/backend.py\n"
                                     b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in entries)
    record += f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode("utf-8")))
    os.makedirs(wheel_directory, exist_ok=True)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            zi = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return name


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    stem = f"{p['name']}-{p['version']}"
    paths = [arc for arc, _ in _files()] + ["pyproject.toml", "README.md", "_build/backend.py"]
    os.makedirs(sdist_directory, exist_ok=True)
    out = os.path.join(sdist_directory, f"{stem}.tar.gz")
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel in paths:
            full = os.path.join(ROOT, rel)
            if os.path.exists(full):
                data = open(full, "rb").read()
                ti = tarfile.TarInfo(f"{stem}/{rel}")
                ti.size, ti.mode, ti.mtime = len(data), 0o644, int(time.time())
                tar.addfile(ti, io.BytesIO(data))
        pkg_info = _metadata().encode("utf-8")
        ti = tarfile.TarInfo(f"{stem}/PKG-INFO")
        ti.size, ti.mode, ti.mtime = len(pkg_info), 0o644, int(time.time())
        tar.addfile(ti, io.BytesIO(pkg_info))
    return os.path.basename(out)
