"""`python -m tools.tf_text_ops --version=2.12.1 > export/tensorflow_text_2_12_1_ops.txt`

Lists the op types a tensorflow-text release registers, for the export's serving-ops audit
(export/serving_ops.py). The release's op libraries were built for their own TensorFlow and
do not load into the installed one, so their names are read from the libraries' strings: an
op of the release is an op the installed tensorflow-text registers whose name is a string in
one of the release's op libraries (`tensorflow_text/python/**/_*.so` of its cp311 manylinux
wheel, fetched with `pip download`). Ops the release had and the installed tensorflow-text no
longer registers are not listed: an export made here cannot contain them.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# NUL-terminated op-name-shaped strings: `CamelCase`, optionally `Namespace>CamelCase`
OP_NAME = re.compile(rb"(?<=\x00)(?:[A-Z][A-Za-z0-9]*>)?[A-Z][A-Za-z0-9]*(?=\x00)")
OP_LIBRARY = re.compile(r"^tensorflow_text/python/(?:.+/)?_[^/]+\.so$")


def download_wheel(version: str, directory: Path) -> Path:
    """The cp311 manylinux wheel of tensorflow-text `version`, from the package index."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--python-version=3.11",
                    "--platform=manylinux2014_x86_64", f"tensorflow-text=={version}",
                    f"--dest={directory}"], check=True, stdout=sys.stderr)
    wheels = list(directory.glob("tensorflow_text-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"error: pip download left {len(wheels)} tensorflow-text wheels in {directory}")
    return wheels[0]


def library_strings(wheel: Path) -> set[str]:
    """The op-name-shaped strings of the wheel's op libraries."""
    with zipfile.ZipFile(wheel) as archive:
        libraries = [name for name in archive.namelist() if OP_LIBRARY.match(name)]
        if not libraries:
            sys.exit(f"error: {wheel.name} has no op libraries (tensorflow_text/python/**/_*.so)")
        return {match.group().decode() for name in libraries
                for match in OP_NAME.finditer(archive.read(name))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="tensorflow-text release, e.g. 2.12.1")
    version = parser.parse_args().version

    import tensorflow_text
    from export.serving_ops import tensorflow_text_ops

    with tempfile.TemporaryDirectory() as directory:
        wheel = download_wheel(version, Path(directory))
        strings = library_strings(wheel)
    installed = tensorflow_text_ops()
    ops = sorted(installed & strings)
    print(f"# Op types of tensorflow-text {version}, one a line: the {len(ops)} ops the "
          f"installed tensorflow-text\n# {tensorflow_text.__version__} registers whose names are "
          f"strings in the op libraries (tensorflow_text/python/**/_*.so)\n# of {wheel.name}.\n"
          f"# Not in {version}: {', '.join(sorted(installed - strings))}.\n"
          f"# Made by `python -m tools.tf_text_ops --version={version}`.")
    print("\n".join(ops))


if __name__ == "__main__":
    main()
