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


def test_an_invalid_smiles_deep_in_a_long_list_is_named_by_its_place_in_the_whole_list(trained_run):
    vae = seqvae.load(trained_run.output_dir, device="cpu")
    with pytest.raises(SeqVAEError, match=r"input 601 of 602; 2 invalid in all"):
        vae.encode(["CCO"] * 600 + ["C1CC((", "xx"], batch_size=512)


def test_latent_map_leaves_invalid_molecules_out_and_says_so(trained_run, caplog):
    from seqvae import viz

    vae = seqvae.load(trained_run.output_dir, device="cpu")
    with caplog.at_level("WARNING", logger="seqvae.viz"):
        picture = viz.latent_map(vae, ["CCO", "CCN", "not valid", "c1ccccc1O", "CCCC"], values=[1, 2, 99, 3, 4], color_by="rank")
    assert "1 of 5 molecules are not valid SMILES" in caplog.text
    assert picture.size[0] > 0


def test_a_mistyped_run_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(SeqVAEError, match="model folder not found: runs/zinc250k_vea .*holds no folder"):
        seqvae.load("runs/zinc250k_vea")


def test_shipped_models_have_a_card_and_complete_metadata():
    from seqvae.pipeline import PRETRAINED_DIR

    folders = sorted(folder for folder in PRETRAINED_DIR.iterdir() if folder.is_dir())
    assert "zinc250k" in [folder.name for folder in folders]
    for folder in folders:  # every folder, so a broken one cannot hide from shipped_models()
        assert folder.name in shipped_models(), f"{folder} lacks config.json"
        card = (folder / "README.md").read_text()
        for heading in ("## Data", "## Recipe", "## Measured", "## Intended use", "## Limits"):
            assert heading in card, f"{folder.name}: model card lacks {heading}"
        config = json.loads((folder / "config.json").read_text())
        assert config["model_type"] == "seqvae"
        assert (folder / "model.safetensors").stat().st_size < 15 * 1024 * 1024
        assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
        metrics = json.loads((folder / "metrics.json").read_text())
        assert 0.0 <= metrics["reconstruction_accuracy"] <= 1.0


# The first eight molecules of the DD-VAE ZINC250k test split (not seen in training).
ZINC_TEST = [
    "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1",
    "C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1",
    "N#Cc1ccc(-c2ccc(O[C@@H](C(=O)N3CCCC3)c3ccccc3)cc2)cc1",
    "CCOC(=O)[C@@H]1CCCN(C(=O)c2nc(-c3ccc(C)cc3)n3c2CCCCC3)C1",
    "N#CC1=C(SCC(=O)Nc2cccc(Cl)c2)N=C([O-])[C@H](C#N)C12CCCCC2",
    "CC[NH+](CC)[C@](C)(CC)[C@H](O)c1cscc1Br",
    "COc1ccc(C(=O)N(C)[C@@H](C)C/C(N)=N/O)cc1O",
    "O=C(Nc1nc[nH]n1)c1cccnc1Nc1cccc(F)c1",
]


def test_the_shipped_zinc250k_model_loads_offline_and_reconstructs_held_out_molecules(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # no run folder of that name around
    vae = seqvae.load("zinc250k", device="cpu")
    assert vae.config.latent_dim == 64 and vae.model.dtype.is_floating_point
    assert str(vae.model.dtype) == "torch.float32"  # float16 on disk, float32 to compute
    from seqvae.metrics.latent_protocols import reconstruction_rate

    greedy = vae.reconstruct(ZINC_TEST)
    assert reconstruction_rate(ZINC_TEST, [[s] for s in greedy]) >= 0.75  # 6 of 8 at release


def test_loading_prints_no_progress_bar(trained_run, capfd):
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()
    seqvae.load(trained_run.output_dir, device="cpu")
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert transformers_logging.is_progress_bar_enabled()  # the user's setting is restored
