"""The arithmetic and the peer set-up of benchmarks/throughput.py (the timings themselves are
measured by the benchmark, not here)."""

from __future__ import annotations

import json

import pytest
from torch import nn

from benchmarks import throughput


def test_gru_macs_count_every_weight_of_a_gru_step_once():
    for input_size, hidden in [(160, 512), (32, 256), (512, 512)]:
        gru = nn.GRU(input_size, hidden)
        weights = gru.weight_ih_l0.numel() + gru.weight_hh_l0.numel()
        assert throughput.gru_macs(input_size, hidden) == weights


def test_forward_macs_of_the_moses_architecture():
    # encoder GRU 32->256, decoder GRU [32+128]->512 then 2 x 512->512, output 512->30
    expected = 3 * 256 * (32 + 256) + 3 * 512 * (160 + 512) + 2 * 3 * 512 * 1024 + 512 * 30
    assert throughput.forward_macs_per_token(32, 256, 128, 512, 3, 30) == expected


def test_window_rates_skip_warm_up_and_divide_work_by_time():
    seconds = [10.0, 1.0, 1.0, 2.0, 2.0, 5.0]
    work = [1, 10, 10, 10, 10, 10]
    assert throughput.window_rates(seconds, work, warmup=1, window=2) == [10.0, 5.0]  # the last step is left over


def test_training_figures_need_enough_steps():
    result = {"step_seconds": [1.0, 1.0], "molecules_per_step": [8, 8], "tokens_per_step": [80, 80],
              "train_flops_per_token": 6, "peak_rss_gb": 1.0}
    with pytest.raises(SystemExit, match="too few timed steps"):
        throughput.training_figures(result, warmup=2, window=2)
    figures = throughput.training_figures(result, warmup=0, window=1)
    assert figures["molecules_per_second"] == 8 and figures["model_flops_per_second"] == 480


def test_peer_patches_apply_to_the_released_text_and_fail_loudly_when_it_changed(tmp_path):
    (tmp_path / "moses" / "vae").mkdir(parents=True)
    (tmp_path / "moses" / "__init__.py").write_text("from .metrics import get_all_metrics\n")
    model = tmp_path / "moses" / "vae" / "model.py"
    model.write_text("eos_mask = torch.zeros(n_batch, dtype=torch.uint8,\n device=x)\n")
    applied = throughput.apply_peer_patches(tmp_path)
    assert len(applied) == 2 and all(": " in line for line in applied)
    assert (tmp_path / "moses" / "__init__.py").read_text() == ""
    assert "dtype=torch.bool," in model.read_text()
    with pytest.raises(SystemExit, match="no longer holds"):
        throughput.apply_peer_patches(tmp_path)  # already patched: the old text is gone


def test_markdown_shows_validity_of_seqvae_samples_and_the_bf16_ratio():
    row = {"molecules_per_second": 100.0, "tokens_per_second": 3600.0, "model_flops_per_second": 9e10, "peak_rss_gb": 1.0}
    report = {
        "training": {"seqvae (moses_vae.yaml)": row}, "matmul_flops": 1e11,
        "matmul": {"matmul_flops": 1e11, "matmul_bf16_flops": 2.2e11},
        "sampling": {
            "peer, batch 512": {"molecules_per_second": 120.0, "peak_rss_gb": 0.4},
            "seqvae (moses_vae.yaml), batch 512, bf16": {"molecules_per_second": 600.0, "peak_rss_gb": 0.7, "valid": 0.8512},
        },
        "train_speedup": 3.0, "train_token_speedup": 3.0, "sample_speedup": 2.5,
        "sample_speedup_vs_peer_default_batch": 5.0, "sample_speedup_bf16": 5.0, "matmul_fraction": 0.9,
    }
    text = throughput.markdown(report)
    assert "| peer, batch 512 | 120.0 | - (untrained) | 0.40 |" in text
    assert "| seqvae (moses_vae.yaml), batch 512, bf16 | 600.0 | 85.1% | 0.70 |" in text
    assert "| sample_speedup_bf16 | 5.00 |" in text
    assert "Matmul rate: fp32 100 GFLOP/s, bf16 220 GFLOP/s." in text


def test_sampling_ceiling_is_the_matmul_rate_over_each_molecules_decoder_work():
    macs = throughput.decoder_macs_per_token(32, 128, 512, 3, 30)
    assert macs == 3 * 512 * (160 + 512) + 2 * 3 * 512 * 1024 + 512 * 30
    report = {
        "matmul_flops": 1e11,
        "training": {"seqvae (moses_vae.yaml)": {"tokens_per_molecule": 40.0}},
        "sampling": {
            # the peer: 99 steps per molecule at 100 molecules/s
            "peer, batch 512": {"molecules_per_second": 100.0, "steps_per_molecule": 99, "decoder_macs_per_token": 4_000_000},
            "seqvae (moses_vae.yaml), batch 512": {"molecules_per_second": 250.0, "steps_per_molecule": 50.0, "decoder_macs_per_token": 4_000_000},
        },
    }
    ceiling = throughput.sampling_ceiling(report)
    assert ceiling["peer_sampling_matmul_fraction"] == pytest.approx(100 * 99 * 8e6 / 1e11)
    assert ceiling["seqvae_sampling_matmul_fraction"] == pytest.approx(250 * 50 * 8e6 / 1e11)
    # at the full rate: 1e11 / (8e6 * 50) = 250 molecules/s, 2.5x the peer; 312.5/s at 40 steps
    assert ceiling["sample_speedup_ceiling"] == pytest.approx(2.5)
    assert ceiling["sample_speedup_ceiling_at_training_length"] == pytest.approx(3.125)
    report.update(ceiling, bf16_skipped="this CPU has no bfloat16 units", train_speedup=2.0)
    text = throughput.markdown({**report, "training": {}, "sampling": {}})
    assert "| sample_speedup_ceiling | 2.50 |" in text
    assert "seqvae would sample 2.50x the peer (3.12x at the training molecules' length)" in text
    assert "bf16 sampling not run: this CPU has no bfloat16 units." in text


def test_contention_ratios_compare_each_policy_with_itself_idle():
    def row(training, sampling):
        return {"training_molecules_per_second": training, "sampling_molecules_per_second": sampling,
                "training_steps_per_second": training / 64, "threads_at_end_of_sampling": 1}

    rows = {
        "threads fixed (before), idle": row(640.0, 500.0),
        "threads fixed (before), one core busy": row(64.0, 25.0),
        "threads follow the free cores (seqvae default), idle": row(600.0, 500.0),
        "threads follow the free cores (seqvae default), one core busy": row(360.0, 300.0),
    }
    ratios = throughput.contention_ratios(rows)
    assert ratios["contended_over_idle_training_fixed"] == pytest.approx(0.1)
    assert ratios["contended_over_idle_sampling_fixed"] == pytest.approx(0.05)
    assert ratios["contended_over_idle_training_auto"] == pytest.approx(0.6)
    # the headline: seqvae's default, the weaker of training and sampling
    assert ratios["contended_over_idle"] == pytest.approx(0.6)
    rows["threads follow the free cores (seqvae default), one core busy"] = row(360.0, 150.0)
    assert throughput.contention_ratios(rows)["contended_over_idle"] == pytest.approx(0.3)


def test_markdown_names_the_machine_and_shows_precision_and_contention_rows():
    machine = {"cpu": "AMD EPYC", "cores": 2, "vector_units": ["avx2", "avx512_bf16"], "torch": "2.13.0"}
    precision = {"fp32": {"molecules_per_second": 1000.0, "valid": 0.5, "unique": 1.0},
                 "bf16": {"molecules_per_second": 1800.0, "valid": 0.505, "unique": 0.999,
                          "logP_mad_mean_over_targets_0_to_5": 0.51, "conditional_valid": 0.99}}
    report = {
        "training": {}, "sampling": {}, "matmul_flops": 1e11, "matmul": {"machine": machine},
        "reduced_precision": "bf16", "precision": {"shipped": {"model": "zinc250k", "precisions": precision}},
        "int8_speedup": 1.8, "reduced_precision_validity_change": 0.005, "contended_over_idle": 0.55,
        "contention": {"threads follow the free cores (seqvae default), one core busy": {
            "training_steps_per_second": 5.0, "sampling_molecules_per_second": 300.0, "threads_at_end_of_sampling": 1}},
        "import_time": {"total_self_ms": 4000.0, "torch_transformers_ms": 3500.0, "seqvae_own_ms": 300.0},
    }
    text = throughput.markdown(report)
    assert text.startswith("Machine: AMD EPYC, 2 cores (avx2, avx512_bf16), torch 2.13.0.")
    assert "| shipped (zinc250k) | fp32 | 1000 | 50.0% | 100.0% | - |" in text
    assert "| shipped (zinc250k) | bf16 | 1800 | 50.5% | 99.9% | 0.510 (valid 99.0%) |" in text
    assert "| threads follow the free cores (seqvae default), one core busy | 5.00 | 300 | 1 |" in text
    assert "| int8_speedup | 1.80 |" in text and "| contended_over_idle | 0.55 |" in text
    assert "bf16 over fp32 on the shipped model (`int8_speedup`, the issue's name for either): 1.80x, validity +0.5 points." in text
    assert "`import seqvae` (python -X importtime, median): 4000 ms" in text


def test_precision_rows_alone_go_to_a_new_file_that_names_their_machine(tmp_path, monkeypatch):
    """``--only precision --output NEW``: a file of precision rows only, with the machine they ran
    on, and no training or sampling tables (those came from another run, maybe another CPU)."""
    machine = {"cpu": "Intel Xeon", "cores": 2, "vector_units": ["amx_bf16"], "torch": "2.13.0"}
    rows = {"reduced_precision": "bf16", "int8_speedup": 2.0, "reduced_precision_validity_change": -0.004,
            "reduced_precision_speedups": {"bf16": 2.0, "int8": 1.5},
            "reduced_precision_speedups_decoded_freely": {"bf16": 2.5, "int8": 1.8}, "int8_speedup_decoded_freely": 2.5,
            "precision": {"shipped": {"model": "zinc250k", "precisions": {
                "fp32": {"molecules_per_second": 500.0, "valid": 0.5, "unique": 1.0},
                "bf16": {"molecules_per_second": 1000.0, "valid": 0.496, "unique": 1.0}}}}}
    monkeypatch.setattr(throughput, "precision_rows", lambda args, quick: rows)
    monkeypatch.setattr(throughput, "machine_description", lambda: machine)
    output = tmp_path / "precision.json"
    throughput.remeasure_precision(type("Args", (), {"output": str(output), "quick": True})())
    saved = json.loads(output.read_text())
    assert saved["precision_machine"] == machine and saved["int8_speedup"] == 2.0 and "training" not in saved
    assert saved["quick"] is True  # a new file follows --quick
    text = output.with_suffix(".md").read_text()
    assert text.startswith("Precision rows measured on: Intel Xeon, 2 cores (amx_bf16), torch 2.13.0.")
    assert "| shipped (zinc250k) | bf16 | 1000 | 49.6% | 100.0% | - |" in text
    assert "bf16 over fp32 on the shipped model (`int8_speedup`, the issue's name for either): 2.00x, validity -0.4 points." in text
    assert "Also measured: int8 1.50x fp32." in text and "training molecules/s" not in text
    assert "Decoded freely (without the SMILES grammar's CPU work, the same in every precision): bf16 2.50x fp32, int8 1.80x fp32." in text
