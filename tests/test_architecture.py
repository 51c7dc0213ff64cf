"""The package's shape: imports with no side effects, no import circle, one list per thing,
the layer-name contract in one module."""
import ast
import logging
import subprocess
import sys

import pytest

from conftest import REPO, cli_env


def test_importing_zoo_and_every_model_module_changes_no_environment_variable():
    # TensorFlow and other libraries set variables of their own when imported: those the
    # model modules import come first, then the snapshot
    code = """
import ast, importlib, os, pathlib, pkgutil, sys
before = dict(os.environ)
import zoo, zoo.registry, zoo.config, zoo.models
names = zoo.registry.names()
print('tensorflow' in sys.modules, os.environ == before)  # listing the registry stays fast
modules = [m.name for m in pkgutil.walk_packages(zoo.models.__path__, 'zoo.models.')
           if not m.name.endswith('__main__')]
for path in pathlib.Path(zoo.models.__path__[0]).rglob('*.py'):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, 'level', 0):
            for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module]):
                if name.split('.')[0] not in ('zoo', '__future__'):
                    importlib.import_module(name)
before = dict(os.environ)
for name in modules:
    importlib.import_module(name)
changed = {k for k in before.keys() | os.environ.keys() if before.get(k) != os.environ.get(k)}
print(sorted(names), len(modules) > 10, sorted(changed))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(), cwd=REPO, timeout=180)
    assert done.stdout.splitlines() == [
        "False True", "['bert', 'imgcls', 'mnist_cnn', 'textcls'] True []"], done.stderr[-2000:]


def imports(path, module: str, known: set[str]) -> set[str]:
    """The zoo/export modules `module` (the file at `path`) imports, function-local ones
    included: `from P import n` counts P.n when that is a module, else P."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                package = module.split(".")[:-node.level] if not path.name == "__init__.py" \
                    else module.split(".")[:len(module.split(".")) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != module}


def test_the_import_graph_of_zoo_and_export_has_no_cycle():
    files = {}
    for top in ("zoo", "export"):
        for path in (REPO / top).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    graph = {name: imports(path, name, set(files)) for name, path in files.items()}
    assert graph["zoo.config"] >= {"zoo.registry", "zoo.schema"}  # the graph is read

    state, stack = {}, []

    def visit(node):  # depth-first; a node met again while on the stack closes a cycle
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_old_export_format_names_are_aliases_with_a_note(caplog):
    from zoo.config import load_config
    from zoo.errors import ConfigError
    with caplog.at_level(logging.WARNING, logger="zoo"):
        cfg = load_config("mnist_cnn", overrides=["export.formats=[tpu, edgetpu, tflite]",
                                                  "export.tpu_batch_size=4"])
    assert cfg.export.formats == ["xla", "edgetpu_audit", "tflite"]
    assert cfg.export.xla_batch_size == 4
    assert [r.getMessage() for r in caplog.records] == [
        "note: export format 'tpu' is now called 'xla'",
        "note: export format 'edgetpu' is now called 'edgetpu_audit'",
        "note: config key 'export.tpu_batch_size' is now called 'export.xla_batch_size'"]
    with pytest.raises(ConfigError, match=r"bad export.formats \['onnx'\]; accepted: saved_model, "
                                          "tflite, xla, edgetpu_audit$"):
        load_config("mnist_cnn", overrides=["export.formats=[onnx]"])


def test_split_preprocessing_is_the_typed_view_of_a_model():
    import tf_keras as keras
    from zoo import registry
    from zoo.parts import Parts, split_preprocessing

    image = registry.create_model("mnist_cnn", conv_filters=[4], dense_units=4)
    assert split_preprocessing(image) == Parts(None, image)
    inputs = keras.Input((2,))
    core = keras.Model(inputs, keras.layers.Dense(1)(inputs), name="core")
    text = keras.Input((2,))
    model = keras.Model(text, core(keras.layers.Rescaling(2.0, name="preprocessor")(text)))
    parts = split_preprocessing(model)
    assert parts.core is core and parts.preprocessor.name == "preprocessor"


def test_importing_zoo_train_defines_no_absl_flag():
    code = ("from absl import app, flags, logging\nbefore = set(flags.FLAGS)\nimport zoo.train\n"
            "flags.DEFINE_string('model', None, 'a program of its own')\n"
            "print(sorted(set(flags.FLAGS) - before))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(), cwd=REPO, timeout=60)
    assert done.stdout.strip() == "['model']", done.stdout + done.stderr[-2000:]
