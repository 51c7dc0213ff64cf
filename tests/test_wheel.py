"""The wheel: built from the sources, installed into a fresh virtualenv, run from elsewhere."""
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from conftest import REPO, cli_env, run_cli

RUN = ["zoo.train", "--model=textcls", "--dataset=synthetic", "--epochs=1", "--batch_size=32",
       "--set=data.synthetic_examples=256"]


@pytest.mark.slow
def test_the_wheel_trains_from_outside_the_checkout_with_the_same_config(tmp_path):
    # build from a copy, so that the build's egg-info and build/ stay out of the checkout
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "setup.py", src)
    for package in ("zoo", "export"):
        shutil.copytree(REPO / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
                    src], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["export", "zoo"]
    assert {"zoo/configs/mnist_cnn.yaml", "zoo/data/sample/README.md",
            "zoo/data/sample/mnist/t10k-images-idx3-ubyte.gz",
            "zoo/data/sample/sst2/train.tsv.gz"} <= set(names)

    # a fresh virtualenv; TensorFlow and the other dependencies come from this environment,
    # named by a .pth file once the wheel is in (pip then sees no other zoo), so nothing is
    # downloaded (`--system-site-packages` would reach the base interpreter's, not this venv's)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel],
                   check=True, capture_output=True, timeout=300)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True).stdout
    (venv / site.strip()).joinpath("this_env.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = cli_env(PYTHONPATH=None)
    where = subprocess.run([python, "-c", "import zoo, importlib.util as u; print(zoo.__file__, "
                            "u.find_spec('tools'))"], capture_output=True, text=True, env=env,
                           cwd=outside, timeout=120)
    assert where.stdout.split() == [str(venv / site.strip() / "zoo" / "__init__.py"), "None"]
    installed = subprocess.run([python, "-m", *RUN, f"--model_dir={outside / 'run'}"],
                               capture_output=True, text=True, env=env, cwd=outside,
                               timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    checkout = run_cli(*RUN, f"--model_dir={tmp_path / 'checkout_run'}")
    assert checkout.returncode == 0, checkout.stderr[-3000:]
    written = [(d / "config.yaml").read_text().replace(str(d), "MODEL_DIR")
               for d in (outside / "run", tmp_path / "checkout_run")]
    assert written[0] == written[1]
    assert "vocab_file: assets/vocab.txt" in written[0]  # its one path, relative to the run
