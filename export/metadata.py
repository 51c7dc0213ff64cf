"""TFLite Metadata that MediaPipe Tasks' classifiers read: the labels, the image input's
colour space and normalization, BERT's input names and its WordPiece vocabulary.

Written as MediaPipe's MetadataPopulator writes it (its Python module needs a compiled part
the mediapipe wheel lacks), with the flatbuffer schemas the wheel ships: the metadata is a
model buffer named TFLITE_METADATA (file identifier M001), and the associated files follow
the model flatbuffer as an uncompressed zip archive (MediaPipe refuses compressed entries).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import flatbuffers
# `from ... import`: mediapipe/__init__.py rebinds `mediapipe.tasks` to
# `mediapipe.tasks.python`, which breaks `import mediapipe.tasks.metadata.x as y`.
from mediapipe.tasks.metadata import metadata_schema_py_generated as meta_fb
from mediapipe.tasks.metadata import schema_py_generated as model_fb

from zoo.files import read_bytes
from zoo.models.bert.encoder import INPUTS

METADATA_BUFFER_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
LABELS_FILE = "labels.txt"
VOCAB_FILE = "vocab.txt"
# TFLite input tensor name (Model Maker's) -> the metadata name MediaPipe binds it by
BERT_INPUTS = dict(zip(INPUTS, ("ids", "mask", "segment_ids")))
BERT_SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[UNK]")  # MediaPipe's BertTokenizer needs them


def _names(enum) -> dict[int, str]:
    """{value: name} of a generated flatbuffer enum class."""
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


def _model(flatbuffer: bytes) -> model_fb.ModelT:
    """The TFLite flatbuffer as objects; one subgraph with every buffer inside it."""
    if not model_fb.Model.ModelBufferHasIdentifier(flatbuffer, 0):
        raise ValueError("not a TFLite flatbuffer (no TFL3 file identifier)")
    model = model_fb.ModelT.InitFromObj(model_fb.Model.GetRootAs(flatbuffer, 0))
    if len(model.subgraphs) != 1:
        raise ValueError(f"the model has {len(model.subgraphs)} subgraphs; MediaPipe Tasks' "
                         "classifiers take one (more is another kind of text model)")
    if any(b.offset for b in model.buffers):
        raise ValueError("the model keeps buffers outside its flatbuffer (a file over 2 GB); "
                         "metadata can't be added to it here")
    return model


def _tensors(model: model_fb.ModelT, kind: str) -> list[model_fb.TensorT]:
    graph = model.subgraphs[0]
    return [graph.tensors[i] for i in getattr(graph, kind)]


def _shape(tensor: model_fb.TensorT) -> list[int]:
    """The tensor's shape, -1 on its dynamic dimensions."""
    shape = [] if tensor.shape is None else [int(d) for d in tensor.shape]
    if tensor.shapeSignature is not None and len(tensor.shapeSignature):
        shape = [int(d) for d in tensor.shapeSignature]
    return shape


def _describe(tensor: model_fb.TensorT, name: str | None = None) -> str:
    return f"{name or tensor.name.decode()} " \
           f"{_names(model_fb.TensorType)[tensor.type].lower()}{_shape(tensor)}"


def _input_names(model: model_fb.ModelT) -> list[str]:
    """Each input's name in the model's signature, or its tensor's name where it has none (a
    converter that writes a signature names the tensors serving_default_<name>:0)."""
    graph = model.subgraphs[0]
    signed = {m.tensorIndex: m.name.decode()
              for signature in model.signatureDefs or [] for m in signature.inputs or []}
    return [signed.get(i, graph.tensors[i].name.decode()) for i in graph.inputs]


def _file(name: str, kind: int, description: str) -> meta_fb.AssociatedFileT:
    file = meta_fb.AssociatedFileT()
    file.name, file.type, file.description = name, kind, description
    return file


def _tensor_metadata(name: str, description: str, properties=None, process_units=None,
                     files=None) -> meta_fb.TensorMetadataT:
    tensor = meta_fb.TensorMetadataT()
    tensor.name, tensor.description = name, description
    tensor.content = meta_fb.ContentT()
    if isinstance(properties, meta_fb.ImagePropertiesT):
        tensor.content.contentPropertiesType = meta_fb.ContentProperties.ImageProperties
    else:
        properties = meta_fb.FeaturePropertiesT()
        tensor.content.contentPropertiesType = meta_fb.ContentProperties.FeatureProperties
    tensor.content.contentProperties = properties
    tensor.processUnits, tensor.associatedFiles = process_units, files
    return tensor


def _labels_file(labels: list[str]) -> bytes:
    """labels.txt: one label a line (MediaPipe drops a last empty line, so none may be)."""
    bad = [label for label in labels if not label or "\n" in label or "\r" in label]
    if bad:
        raise ValueError(f"labels must be non-empty single lines; got {bad!r}")
    return ("\n".join(labels) + "\n").encode("utf-8")


def _scores_metadata(model: model_fb.ModelT, labels: list[str]) -> meta_fb.TensorMetadataT:
    """The output's metadata: the class scores, labelled by labels.txt."""
    outputs = _tensors(model, "outputs")
    if len(outputs) != 1:
        raise ValueError(f"a classifier has one output; this model has {len(outputs)}: "
                         f"{', '.join(map(_describe, outputs))}")
    output = outputs[0]
    if output.type not in (model_fb.TensorType.FLOAT32, model_fb.TensorType.UINT8):
        raise ValueError(f"output {_describe(output)}: MediaPipe Tasks reads float32 or uint8 "
                         "scores")
    if _shape(output) != [1, len(labels)]:
        raise ValueError(f"{len(labels)} labels for output {_describe(output)}; expected "
                         f"[1, {len(labels)}]")
    labels_file = _file(LABELS_FILE, meta_fb.AssociatedFileType.TENSOR_AXIS_LABELS,
                        "Labels of the scores, one a line.")
    return _tensor_metadata("probability", "Probability of each label.", files=[labels_file])


def _min_parser_version(subgraph: meta_fb.SubGraphMetadataT) -> str:
    """The schema version that added the newest field this module writes (metadata_schema.fbs
    history): 1.1.0 for input_process_units and BertTokenizerOptions (its VOCABULARY file is
    1.0.1), 1.0.0 for the rest."""
    return "1.0.0" if subgraph.inputProcessUnits is None else "1.1.0"


def _populate(model: model_fb.ModelT, name: str, description: str,
              subgraph: meta_fb.SubGraphMetadataT, files: dict[str, bytes]) -> bytes:
    """The model with `subgraph`'s metadata in its TFLITE_METADATA buffer (replacing any, and
    any files appended before) and `files` appended as an uncompressed zip archive."""
    metadata = meta_fb.ModelMetadataT()
    metadata.name, metadata.description = name, description
    metadata.subgraphMetadata = [subgraph]
    metadata.minParserVersion = _min_parser_version(subgraph)
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), METADATA_IDENTIFIER)
    buffer = model_fb.BufferT()
    buffer.data = bytes(builder.Output())

    model.metadata = model.metadata or []
    old = [m for m in model.metadata if m.name.decode() == METADATA_BUFFER_NAME]
    if old:
        model.buffers[old[0].buffer] = buffer
    else:
        entry = model_fb.MetadataT()
        entry.name, entry.buffer = METADATA_BUFFER_NAME, len(model.buffers)
        model.buffers.append(buffer)
        model.metadata.append(entry)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), MODEL_IDENTIFIER)

    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for file_name, content in files.items():
            archive.writestr(file_name, content)
    return out.getvalue()


def image_classifier(model: bytes, labels: list[str], name: str, description: str = "",
                     mean: float = 0.0, std: float = 1.0) -> bytes:
    """The image classifier `model` (one RGB input [1,H,W,3], uint8 or float32; one output
    [1, len(labels)]) with MediaPipe's metadata. A float32 input gets (pixel - mean) / std,
    pixels 0..255; a uint8 input gets the raw pixels whatever mean and std say."""
    tflite = _model(model)
    inputs = _tensors(tflite, "inputs")
    shape = _shape(inputs[0])
    if len(inputs) != 1 or len(shape) != 4 or shape[::3] != [1, 3] or min(shape) <= 0:
        raise ValueError(f"an image classifier takes one RGB input [1,H,W,3]; this model takes "
                         f"{', '.join(map(_describe, inputs))}")
    if inputs[0].type not in (model_fb.TensorType.UINT8, model_fb.TensorType.FLOAT32):
        raise ValueError(f"input {_describe(inputs[0])}: MediaPipe Tasks feeds uint8 or float32")
    if not std:
        raise ValueError(f"std={std}: normalization divides by it")
    properties = meta_fb.ImagePropertiesT()
    properties.colorSpace = meta_fb.ColorSpaceType.RGB
    normalization = meta_fb.NormalizationOptionsT()
    normalization.mean, normalization.std = [float(mean)], [float(std)]
    unit = meta_fb.ProcessUnitT()
    unit.optionsType, unit.options = meta_fb.ProcessUnitOptions.NormalizationOptions, normalization
    subgraph = meta_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_tensor_metadata(
        "image", "RGB image, height x width as the model takes it.", properties, [unit])]
    subgraph.outputTensorMetadata = [_scores_metadata(tflite, labels)]
    return _populate(tflite, name, description, subgraph, {LABELS_FILE: _labels_file(labels)})


def vocabulary(vocab: Path) -> list[str]:
    """vocab.txt's tokens as MediaPipe reads them, line i the token of id i (lines end at
    "\\n", a "\\r" before it dropped); refused where MediaPipe would give other ids than the
    line numbers (it skips empty lines) or lacks a token its BertTokenizer uses."""
    lines = read_bytes(vocab).decode("utf-8").split("\n")
    lines = [line.removesuffix("\r") for line in lines[:-1 if lines[-1] == "" else None]]
    empty = [i + 1 for i, line in enumerate(lines) if not line]
    if empty:
        raise ValueError(f"{vocab}: line(s) {empty[:5]} empty; MediaPipe skips empty lines, "
                         "which moves every later token id")
    missing = [t for t in BERT_SPECIAL_TOKENS if t not in lines]
    if missing:
        raise ValueError(f"{vocab} lacks {', '.join(missing)}; MediaPipe's BertTokenizer uses them")
    return lines


def bert_text_classifier(model: bytes, labels: list[str], vocab: Path, name: str,
                         description: str = "") -> bytes:
    """The BERT-kind text classifier `model` (three int32 inputs [1, L] named input_word_ids,
    input_mask and input_type_ids in its signature or as tensors, any order; one output
    [1, len(labels)]) with MediaPipe's metadata: the inputs named ids, mask and segment_ids,
    and a BertTokenizer with `vocab` as vocab.txt."""
    tflite = _model(model)
    inputs, names = _tensors(tflite, "inputs"), _input_names(tflite)
    if sorted(names) != sorted(BERT_INPUTS):
        takes = ", ".join(map(_describe, inputs, names)) or "nothing"
        raise ValueError(f"a BERT text classifier takes {', '.join(BERT_INPUTS)}; this model "
                         f"takes {takes}")
    length = _shape(inputs[0])[-1]
    for tensor, input_name in zip(inputs, names):
        if tensor.type != model_fb.TensorType.INT32 or _shape(tensor) != [1, length] \
                or length < 2:
            raise ValueError(f"input {_describe(tensor, input_name)}: BERT's inputs are int32 "
                             "[1, L], static, the same L >= 2 for all three")
    descriptions = {"ids": "Token ids of [CLS] text [SEP], 0 after.",
                    "mask": "1 for each token, 0 after.",
                    "segment_ids": "0: every token is from the first segment."}
    tokenizer = meta_fb.BertTokenizerOptionsT()
    tokenizer.vocabFile = [_file(VOCAB_FILE, meta_fb.AssociatedFileType.VOCABULARY,
                                 "WordPiece vocabulary, one token a line; the id is its line.")]
    unit = meta_fb.ProcessUnitT()
    unit.optionsType, unit.options = meta_fb.ProcessUnitOptions.BertTokenizerOptions, tokenizer
    subgraph = meta_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [
        _tensor_metadata(BERT_INPUTS[n], descriptions[BERT_INPUTS[n]]) for n in names]
    subgraph.outputTensorMetadata = [_scores_metadata(tflite, labels)]
    subgraph.inputProcessUnits = [unit]
    vocabulary(vocab)
    files = {LABELS_FILE: _labels_file(labels), VOCAB_FILE: read_bytes(vocab)}
    return _populate(tflite, name, description, subgraph, files)


def _read_files(files) -> list[dict]:
    """AssociatedFile tables as {name, type}."""
    return [{"name": f.Name().decode(), "type": _names(meta_fb.AssociatedFileType)[f.Type()]}
            for f in files]


def _read_unit(unit) -> dict:
    """A ProcessUnit table as {type, and its options this module writes}."""
    kind = _names(meta_fb.ProcessUnitOptions)[unit.OptionsType()]
    out = {"type": kind}
    options = getattr(meta_fb, kind)()
    options.Init(unit.Options().Bytes, unit.Options().Pos)
    if kind == "NormalizationOptions":
        out.update(mean=options.MeanAsNumpy().tolist(), std=options.StdAsNumpy().tolist())
    elif kind == "BertTokenizerOptions":
        out["vocab_file"] = _read_files(options.VocabFile(i)
                                        for i in range(options.VocabFileLength()))
    return out


def _read_tensor(tensor, tflite_tensor) -> dict:
    """A TensorMetadata table, beside the name of the TFLite tensor it describes."""
    content = tensor.Content()
    properties = content and _names(meta_fb.ContentProperties)[content.ContentPropertiesType()]
    out = {"name": tensor.Name().decode(), "tensor": tflite_tensor.Name().decode(),
           "content": properties,
           "process_units": [_read_unit(tensor.ProcessUnits(i))
                             for i in range(tensor.ProcessUnitsLength())],
           "associated_files": _read_files(tensor.AssociatedFiles(i)
                                           for i in range(tensor.AssociatedFilesLength()))}
    if properties == "ImageProperties":
        image = meta_fb.ImageProperties()
        image.Init(content.ContentProperties().Bytes, content.ContentProperties().Pos)
        out["color_space"] = _names(meta_fb.ColorSpaceType)[image.ColorSpace()]
    return out


def read(model: bytes) -> dict:
    """A .tflite's metadata as plain data: name, description, min_parser_version, `inputs`
    and `outputs` (metadata name, TFLite tensor name, content type, process units,
    associated files), `input_process_units`, and `files` ({name: bytes} from the zip)."""
    root = model_fb.Model.GetRootAs(model, 0)
    entries = [root.Metadata(i) for i in range(root.MetadataLength())]
    entry = next((m for m in entries if m.Name().decode() == METADATA_BUFFER_NAME), None)
    if entry is None:
        raise ValueError(f"the model has no {METADATA_BUFFER_NAME} metadata")
    buffer = root.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    if not meta_fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0):
        raise ValueError(f"{METADATA_BUFFER_NAME} lacks the {METADATA_IDENTIFIER.decode()} "
                         "file identifier")
    metadata = meta_fb.ModelMetadata.GetRootAs(buffer, 0)
    subgraph, graph = metadata.SubgraphMetadata(0), root.Subgraphs(0)
    tensors = lambda n, meta, index: [_read_tensor(meta(i), graph.Tensors(index(i)))
                                      for i in range(n)]
    files = {}
    if zipfile.is_zipfile(io.BytesIO(model)):
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            files = {info.filename: archive.read(info) for info in archive.infolist()}
    return {"name": metadata.Name().decode(),
            "description": (metadata.Description() or b"").decode(),
            "min_parser_version": metadata.MinParserVersion().decode(),
            "subgraphs": metadata.SubgraphMetadataLength(),
            "inputs": tensors(subgraph.InputTensorMetadataLength(),
                              subgraph.InputTensorMetadata, graph.Inputs),
            "outputs": tensors(subgraph.OutputTensorMetadataLength(),
                               subgraph.OutputTensorMetadata, graph.Outputs),
            "input_process_units": [_read_unit(subgraph.InputProcessUnits(i))
                                    for i in range(subgraph.InputProcessUnitsLength())],
            "files": files}
