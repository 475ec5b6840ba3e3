"""Real mediapipe pose and person-segmentation models for the tests, built from a PyPI wheel.

mediapipe >= 0.10.30 ships no models. The mediapipe 0.10.21 wheel on PyPI is the last that carries
them (for its legacy ``solutions`` API), as plain ``.tflite`` files. This module downloads that
wheel once (``pip download --no-deps``, ~35 MB; the Linux x86_64 / CPython 3.11 build on every
host: only its model and schema files are read, nothing is installed or imported from it) into
``$VACELIVE_TEST_CACHE`` (default ``~/.cache/vacelive-test``), checks the models' SHA-256 and
builds, in ``<cache>/mediapipe-0.10.21-models/``:

* ``pose_landmarker_full.task``: the tasks API's bundle, a zip of ``pose_detector.tflite`` (the
  wheel's ``pose_detection.tflite``, which already carries its metadata) and
  ``pose_landmarks_detector.tflite`` (the wheel's ``pose_landmark_full.tflite`` with the
  NormalizationOptions metadata the tasks API needs added: input range [0, 1], i.e. mean 0 and
  std 255, the range of the ``ImageToTensorCalculator`` in the wheel's own
  ``pose_landmark_by_roi_cpu`` graph);
* ``selfie_segmenter.tflite``: the wheel's ``selfie_segmentation.tflite`` (it carries its
  metadata);
* ``pose_landmark_full_no_metadata.tflite`` and ``pose_landmarker_no_metadata.task``: the landmark
  model as the wheel has it, which mediapipe refuses (the tests of the load errors use them).

The metadata is written with the flatbuffers schema modules of the same wheel
(``mediapipe/tasks/metadata/*_py_generated.py``), as mediapipe's own metadata writer does; that
writer cannot be imported from mediapipe >= 0.10.30 (its compiled helpers are not shipped).

``models_or_skip()`` (for the tests' fixtures) skips the test when mediapipe is not installed (the
``pose`` extra) or when PyPI cannot be reached, and fails on anything else (a wrong checksum, a
wheel that is no longer there). ``python -m tests.mediapipe_models`` builds the folder and prints
its path (``bench/bench_annotators.py`` uses it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

WHEEL_REQUIREMENT = "mediapipe==0.10.21"
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
PIP_PLATFORM = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                "--implementation", "cp", "--abi", "cp311")

MODELS_IN_WHEEL = {
    "pose_detection.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
    "selfie_segmentation.tflite": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
}
"""File -> (path in the wheel, SHA-256)."""

SCHEMAS_IN_WHEEL = {
    "tflite_schema": "mediapipe/tasks/metadata/schema_py_generated.py",
    "metadata_schema": "mediapipe/tasks/metadata/metadata_schema_py_generated.py",
}

POSE_TASK = "pose_landmarker_full.task"
SEGMENTER = "selfie_segmenter.tflite"
POSE_TASK_NO_METADATA = "pose_landmarker_no_metadata.task"
LANDMARKS_NO_METADATA = "pose_landmark_full_no_metadata.tflite"
BUILT = (POSE_TASK, SEGMENTER, POSE_TASK_NO_METADATA, LANDMARKS_NO_METADATA)

LANDMARK_OUTPUTS = ("landmarks", "pose_presence", "segmentation", "heatmap", "world_landmarks")
"""pose_landmark_full.tflite's five outputs, in order."""

UNREACHABLE_MARKERS = (
    "NewConnectionError", "NameResolutionError", "Failed to resolve", "ConnectTimeoutError",
    "ReadTimeoutError", "Connection refused", "Network is unreachable", "ProxyError",
    "Could not fetch URL", "Max retries exceeded", "Temporary failure in name resolution",
)
"""What pip prints when it cannot reach the package index (any of these, and no download)."""


class PyPIUnreachable(RuntimeError):
    """pip could not reach the package index."""


def cache_dir() -> Path:
    return Path(os.environ.get("VACELIVE_TEST_CACHE", Path.home() / ".cache" / "vacelive-test"))


def models_dir() -> Path:
    return cache_dir() / "mediapipe-0.10.21-models"


def download_wheel() -> Path:
    """The cached 0.10.21 wheel, downloaded with pip if it is not there yet."""
    wheel = cache_dir() / "wheels" / WHEEL_NAME
    if wheel.is_file():
        return wheel
    wheel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheel.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               *PIP_PLATFORM, "--retries", "1", "--timeout", "20", "--dest", tmp, WHEEL_REQUIREMENT]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        got = Path(tmp) / WHEEL_NAME
        if done.returncode or not got.is_file():
            output = done.stdout + done.stderr
            evidence = [line for line in output.splitlines()
                        if any(marker in line for marker in UNREACHABLE_MARKERS)]
            if evidence:
                raise PyPIUnreachable(f"pip: {evidence[-1].strip()[:300]}")
            raise RuntimeError(f"`{' '.join(cmd)}` did not give {WHEEL_NAME}:\n{output}")
        os.replace(got, wheel)
    return wheel


def _load_schema(source: bytes, name: str) -> types.ModuleType:
    """A flatbuffers-generated schema module (plain Python, needs ``flatbuffers``) from its source."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.py"
        path.write_bytes(source)
        spec = importlib.util.spec_from_file_location(f"_vacelive_test_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def add_image_metadata(model: bytes, tflite: types.ModuleType, meta: types.ModuleType,
                       mean: float, std: float, outputs: tuple[str, ...]) -> bytes:
    """``model`` with TFLite metadata saying: RGB image input normalised as (x - mean) / std."""
    import flatbuffers

    image = meta.TensorMetadataT()
    image.name = "image"
    image.content = meta.ContentT()
    image.content.contentPropertiesType = meta.ContentProperties.ImageProperties
    image.content.contentProperties = meta.ImagePropertiesT()
    image.content.contentProperties.colorSpace = meta.ColorSpaceType.RGB
    normalize = meta.ProcessUnitT()
    normalize.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    normalize.options = meta.NormalizationOptionsT()
    normalize.options.mean, normalize.options.std = [mean], [std]
    image.processUnits = [normalize]
    image.stats = meta.StatsT()
    image.stats.min, image.stats.max = [(0 - mean) / std], [(255 - mean) / std]
    output_metadata = []
    for name in outputs:
        tensor = meta.TensorMetadataT()
        tensor.name = name
        output_metadata.append(tensor)
    subgraph = meta.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image], output_metadata
    model_metadata = meta.ModelMetadataT()
    model_metadata.name = "pose landmarks"
    model_metadata.subgraphMetadata = [subgraph]
    model_metadata.minParserVersion = "1.0.0"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model_metadata.Pack(builder), file_identifier=b"M001")
    metadata_bytes = bytes(builder.Output())

    tree = tflite.ModelT.InitFromObj(tflite.Model.GetRootAs(model, 0))
    if len(tree.subgraphs[0].outputs) != len(outputs):
        raise ValueError(f"model has {len(tree.subgraphs[0].outputs)} outputs, not {len(outputs)}")
    if any(entry.name in (b"TFLITE_METADATA", "TFLITE_METADATA") for entry in tree.metadata or []):
        raise ValueError("model already carries TFLITE_METADATA")
    buffer = tflite.BufferT()
    buffer.data = np.frombuffer(metadata_bytes, dtype=np.uint8)
    tree.buffers.append(buffer)
    entry = tflite.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(tree.buffers) - 1
    tree.metadata = [*(tree.metadata or []), entry]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _bundle(files: dict[str, bytes], path: Path) -> None:
    """A tasks-API ``.task`` bundle: an uncompressed zip, written with mediapipe's own helper."""
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils

    model_asset_bundle_utils.create_model_asset_bundle(files, str(path))


def build_models() -> Path:
    """The folder of built model files (see the module docstring), made once and cached."""
    target = models_dir()
    if all((target / name).is_file() for name in BUILT):
        return target
    wheel = download_wheel()
    with zipfile.ZipFile(wheel) as zf:
        models = {name: zf.read(member) for name, (member, _) in MODELS_IN_WHEEL.items()}
        schemas = {name: zf.read(member) for name, member in SCHEMAS_IN_WHEEL.items()}
    for name, (_, digest) in MODELS_IN_WHEEL.items():
        if hashlib.sha256(models[name]).hexdigest() != digest:
            raise RuntimeError(f"{name} in {wheel} does not have the expected SHA-256 {digest}; "
                               "delete the wheel to download it again")
    tflite = _load_schema(schemas["tflite_schema"], "tflite_schema")
    meta = _load_schema(schemas["metadata_schema"], "metadata_schema")
    landmarks = add_image_metadata(models["pose_landmark_full.tflite"], tflite, meta,
                                   mean=0.0, std=255.0, outputs=LANDMARK_OUTPUTS)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="building-", dir=target.parent))
    try:
        _bundle({"pose_detector.tflite": models["pose_detection.tflite"],
                 "pose_landmarks_detector.tflite": landmarks}, staging / POSE_TASK)
        _bundle({"pose_detector.tflite": models["pose_detection.tflite"],
                 "pose_landmarks_detector.tflite": models["pose_landmark_full.tflite"]},
                staging / POSE_TASK_NO_METADATA)
        (staging / SEGMENTER).write_bytes(models["selfie_segmentation.tflite"])
        (staging / LANDMARKS_NO_METADATA).write_bytes(models["pose_landmark_full.tflite"])
        staging.chmod(0o755)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def person_photo() -> np.ndarray:
    """Grace Hopper's official US Navy portrait (public domain), shipped with matplotlib as
    sample data: (600, 512, 3) uint8 RGB, head and shoulders, flag and sky behind."""
    cbook = pytest.importorskip("matplotlib.cbook")
    import cv2

    image = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    assert image is not None and image.shape == (600, 512, 3)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


_unreachable: list[str] = []  # why PyPI could not be reached, once per test session


def models_or_skip() -> Path:
    """The built model folder for a test; skips it without mediapipe or without a reachable PyPI."""
    pytest.importorskip("mediapipe.tasks.python.vision", reason="mediapipe (the pose extra) is not installed")
    if not _unreachable:
        try:
            return build_models()
        except PyPIUnreachable as exc:
            _unreachable.append(str(exc))
    pytest.skip(f"PyPI unreachable, cannot download {WHEEL_REQUIREMENT} for its models: {_unreachable[0]}")


if __name__ == "__main__":
    print(build_models())
