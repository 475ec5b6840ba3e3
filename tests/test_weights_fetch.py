"""`vacelive weights fetch` against a stand-in hub on 127.0.0.1 (HF_ENDPOINT): no internet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from tests.hub_standin import HubStandIn
from tests.weight_files import task_bundle, tflite_bytes, tiny_dit_state
from vacelive.engine.model import CONFIGS
from vacelive.engine.weights import WeightsManifest, weights_check
from vacelive.engine.weights.fetch import FetchError, fetch
from vacelive.engine.weights.sets import ADD_ONS, SETS, WAN_T2V

LONGLIVE = "Efficient-Large-Model/LongLive-1.3B"


def _pt_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _serve_set(hub: HubStandIn, set_name: str) -> dict[str, bytes]:
    """Serve every file of ``set_name`` (tiny stand-ins in the official layouts); path -> bytes."""
    dit = tiny_dit_state()
    bodies = {
        "diffusion_pytorch_model.safetensors": save(dit),
        "models/longlive_base.pt": _pt_bytes({"generator": {"model." + k: v for k, v in dit.items()}}),
        "models/lora.pt": _pt_bytes({"generator_lora": {
            "base_model.model.blocks.0.ffn.0.lora_A.weight": torch.zeros(4, CONFIGS["tiny"].dim),
            "base_model.model.blocks.0.ffn.0.lora_B.weight": torch.zeros(CONFIGS["tiny"].ffn_dim, 4)}}),
    }
    served = {}
    for source in SETS[set_name].roles:
        for remote in source.files:
            body = bodies.get(remote.path, f"stand-in for {remote.path}".encode())
            hub.add_hub_file(remote.repo, remote.path, body)
            served[remote.local] = body
    return served


@pytest.fixture
def hub(monkeypatch):
    with HubStandIn() as standin:
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        monkeypatch.setenv("VACELIVE_MEDIAPIPE_URL", standin.url + "/mediapipe")
        monkeypatch.setenv("VACELIVE_TAEHV_URL", standin.url + "/taehv")
        yield standin


def _final_files(folder: Path) -> set[str]:
    """Files in the folder outside the download caches."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(".cache/")}


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vacelive.engine.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, cwd=cwd)


def test_official_dit_fetches_from_its_repository_and_check_accepts_the_folder(hub, tmp_path):
    _serve_set(hub, "wan-t2v-1.3b")
    folder = tmp_path / "w"
    result = _cli("weights", "fetch", str(folder), "--set", "wan-t2v-1.3b", "--only", "dit",
                  env={"HF_ENDPOINT": hub.url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "licence: Apache-2.0" in result.stdout
    assert hub.gets() == [f"/{WAN_T2V}/resolve/main/diffusion_pytorch_model.safetensors"]
    assert _final_files(folder) == {"diffusion_pytorch_model.safetensors", "vacelive-weights.toml"}
    assert WeightsManifest.load(folder).files == {"dit": "diffusion_pytorch_model.safetensors"}
    check = _cli("weights", "check", str(folder))
    assert check.returncode == 0, check.stdout
    assert "result: all good" in check.stdout


def test_a_whole_set_fetches_once_then_nothing_is_downloaded_again(hub, tmp_path):
    served = _serve_set(hub, "longlive")
    folder = tmp_path / "w"
    lines: list[str] = []
    manifest = fetch(folder, "longlive", log=lines.append)
    assert _final_files(folder) == set(served) | {"vacelive-weights.toml"}
    for local, body in served.items():
        assert (folder / local).read_bytes() == body
    assert manifest.files == {"dit": "models/longlive_base.pt", "lora": "models/lora.pt", "vae": "Wan2.1_VAE.pth",
                              "t5": "models_t5_umt5-xxl-enc-bf16.pth", "tokenizer": "google/umt5-xxl"}
    reread = WeightsManifest.load(folder)
    assert (reread.dit_weights, reread.lora_alpha, reread.set_name) == ("generator", 256, "longlive")
    assert any("NON-COMMERCIAL" in line for line in lines if line.startswith("dit:"))
    downloads = len(hub.gets())
    assert downloads == len(served)
    fetch(folder, "longlive", log=lines.append)
    assert len(hub.gets()) == downloads  # only HEADs the second time
    assert sum("present" in line for line in lines) == len(served)


def test_a_file_of_the_wrong_size_on_disk_is_fetched_again(hub, tmp_path):
    served = _serve_set(hub, "wan-t2v-1.3b")
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "Wan2.1_VAE.pth").write_bytes(b"half a file")
    fetch(folder, "wan-t2v-1.3b", only=["vae"], log=lambda line: None)
    assert (folder / "Wan2.1_VAE.pth").read_bytes() == served["Wan2.1_VAE.pth"]


def test_fetching_more_roles_keeps_the_manifest_entries_already_there(hub, tmp_path):
    _serve_set(hub, "wan-t2v-1.3b")
    hub.add_hub_file("depth-anything/Depth-Anything-V2-Small", "depth_anything_v2_vits.pth", b"depth")
    hub.add_file("mediapipe/" + ADD_ONS["pose"].files[0].path, task_bundle(tmp_path / "p.task").read_bytes())
    hub.add_file("mediapipe/" + ADD_ONS["segmenter"].files[0].path, tflite_bytes())
    folder = tmp_path / "w"
    fetch(folder, "wan-t2v-1.3b", only=["dit"], log=lambda line: None)
    fetch(folder, "wan-t2v-1.3b", only=["depth", "pose", "segmenter"], log=lambda line: None)
    assert WeightsManifest.load(folder).files == {
        "dit": "diffusion_pytorch_model.safetensors", "depth": "depth_anything_v2_vits.pth",
        "pose": "pose_landmarker_full.task", "segmenter": "selfie_segmenter.tflite"}
    assert f"/mediapipe/{ADD_ONS['pose'].files[0].path}" in hub.gets()


@pytest.mark.parametrize("fault", ["missing", "drop", "short"])
def test_a_failed_hub_download_is_one_line_and_leaves_no_file(hub, tmp_path, fault):
    _serve_set(hub, "wan-t2v-1.3b")
    path = f"/{WAN_T2V}/resolve/main/Wan2.1_VAE.pth"
    if fault == "missing":
        del hub.files[path]
    else:
        hub.files[path].fault = fault
    folder = tmp_path / "w"
    with pytest.raises(FetchError) as err:
        fetch(folder, "wan-t2v-1.3b", log=lambda line: None)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("Wan2.1_VAE.pth: ") and hub.url + path in message
    assert "Wan2.1_VAE.pth" not in _final_files(folder)
    assert not (folder / "vacelive-weights.toml").exists()  # the manifest is written only once all is there


@pytest.mark.parametrize("fault", ["missing", "drop", "short"])
def test_a_failed_plain_download_is_one_line_and_leaves_no_file(hub, tmp_path, fault):
    url_path = "mediapipe/" + ADD_ONS["segmenter"].files[0].path
    if fault != "missing":
        hub.add_file(url_path, tflite_bytes() * 100, fault=fault)
    folder = tmp_path / "w"
    with pytest.raises(FetchError) as err:
        fetch(folder, "wan-t2v-1.3b", only=["segmenter"], log=lambda line: None)
    assert "\n" not in str(err.value) and f"{hub.url}/{url_path}" in str(err.value)
    assert _final_files(folder) == set()
    assert not any((folder / ".cache").rglob("*.incomplete"))


def test_fetch_cli_failure_is_one_line_with_exit_1(hub, tmp_path):
    result = _cli("weights", "fetch", str(tmp_path / "w"), "--only", "vae", env={"HF_ENDPOINT": hub.url})
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    error = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Wan2.1_VAE.pth" in error[0] and hub.url in error[0]


def test_fetch_list_and_bad_roles_need_no_network(tmp_path):
    listed = _cli("weights", "fetch", "--list", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert listed.returncode == 0
    for name in SETS:
        assert name in listed.stdout
    assert "Efficient-Large-Model/LongLive-1.3B/resolve/main/models/lora.pt" in listed.stdout
    assert "NON-COMMERCIAL" in listed.stdout and "[MIT]" in listed.stdout
    bad = _cli("weights", "fetch", str(tmp_path / "w"), "--only", "vea")
    assert bad.returncode == 2 and "unknown role(s) for set 'longlive': vea" in bad.stdout
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_weights_check_after_a_fetch_says_which_generator_dict_is_used(hub, tmp_path, capsys):
    _serve_set(hub, "longlive")
    folder = tmp_path / "w"
    fetch(folder, "longlive", only=["dit", "lora"], log=lambda line: None)
    assert weights_check(str(folder)) == 0
    out = capsys.readouterr().out
    assert "generator weights: 'generator'" in out
    assert "alpha 256 (from the manifest)" in out
