"""Where ``seqvae.load`` finds models: run folders, shipped models, Hugging Face Hub ids (read
here from a local Hub cache, offline), and ``push_to_hub``'s upload; plus invalid SMILES inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import seqvae
from seqvae.errors import SeqVAEError
from seqvae.pipeline import shipped_models


def test_unknown_name_lists_the_shipped_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SeqVAEError, match="model folder not found: nonexistent-name") as error:
        seqvae.load("nonexistent-name")
    for name in shipped_models():
        assert name in str(error.value)
    assert "Hugging Face Hub id" in str(error.value)


def _fake_hub_cache(cache: Path, repo_id: str, files: Path) -> None:
    """The layout huggingface_hub writes: models--user--repo/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(files, repo / "snapshots" / commit)


def test_a_hub_id_loads_through_transformers_from_the_local_cache(trained_run, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "someone/tiny-seqvae", trained_run.output_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    from_hub = seqvae.load("someone/tiny-seqvae", device="cpu")
    local = seqvae.load(trained_run.output_dir, device="cpu")
    assert from_hub.source == "someone/tiny-seqvae"
    assert from_hub.encode(["CCO"]).tolist() == local.encode(["CCO"]).tolist()


def test_an_unreachable_hub_id_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SeqVAEError) as error:
        seqvae.load("nobody/no-such-model", device="cpu")
    message = str(error.value)
    assert "'nobody/no-such-model'" in message and "Hugging Face Hub" in message
    assert "\n" not in message


def test_push_to_hub_uploads_a_folder_that_loads_back(trained_run, tmp_path, monkeypatch):
    uploaded = {}

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        uploaded["created"] = (repo_id, private, exist_ok)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id, folder_path, commit_message=None, **kwargs):
        shutil.copytree(folder_path, tmp_path / "uploaded")
        uploaded["repo_id"] = repo_id

    monkeypatch.setattr("huggingface_hub.HfApi.create_repo", create_repo)
    monkeypatch.setattr("huggingface_hub.HfApi.upload_folder", upload_folder)
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    url = vae.push_to_hub("someone/tiny-seqvae", private=True)
    assert url == "https://huggingface.co/someone/tiny-seqvae"
    assert uploaded["created"] == ("someone/tiny-seqvae", True, True)
    folder = tmp_path / "uploaded"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.json", "recipe.yaml"):
        assert (folder / name).is_file(), name
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))  # nothing pickled
    again = seqvae.load(folder, device="cpu")
    assert again.encode(["CCO"]).tolist() == vae.encode(["CCO"]).tolist()


@pytest.mark.parametrize("method", ["encode", "reconstruct", "interpolate", "neighbours"])
def test_an_invalid_smiles_input_is_an_error_naming_it(trained_run, method):
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    call = {
        "encode": lambda: vae.encode(["CCO", "C1CC(("]),
        "reconstruct": lambda: vae.reconstruct("C1CC(("),
        "interpolate": lambda: vae.interpolate("CCO", "C1CC((", steps=3),
        "neighbours": lambda: vae.neighbours("C1CC(("),
    }[method]
    with pytest.raises(SeqVAEError, match=r"'C1CC\(\(' .*is not a valid SMILES"):
        call()


def test_shipped_models_have_a_card_and_complete_metadata():
    from seqvae.pipeline import PRETRAINED_DIR

    for name in shipped_models():
        folder = PRETRAINED_DIR / name
        card = (folder / "README.md").read_text()
        for heading in ("## Data", "## Recipe", "## Measured", "## Intended use", "## Limits"):
            assert heading in card, f"{name}: model card lacks {heading}"
        config = json.loads((folder / "config.json").read_text())
        assert config["model_type"] == "seqvae"
        assert (folder / "model.safetensors").stat().st_size < 15 * 1024 * 1024
        metrics = json.loads((folder / "metrics.json").read_text())
        assert 0.0 <= metrics["reconstruction_accuracy"] <= 1.0
