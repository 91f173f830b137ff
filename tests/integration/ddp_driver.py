"""Run by tests/integration/test_ddp.py under ``torch.distributed.run`` (2 processes, gloo).

Trains a tiny model through ``seqvae.workflow`` (what ``seqvae train`` runs) and writes, per
rank, what that rank read: the token rows of every batch with its epoch, and how many chunks
each batch was cut into. Argument: a JSON object with ``overrides``, ``output_dir``, ``record_dir``,
optional ``resume`` and ``rank_overrides`` (``{"1": {...}}``, settings that differ per rank).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from seqvae.training import SeqVAETrainer
from seqvae.workflow import train_and_evaluate


def record_batches(record: dict) -> None:
    """Wrap the trainer's step so that it notes each batch's rows, epoch and chunk count."""
    step = SeqVAETrainer.training_step

    def training_step(self, model, inputs, num_items_in_batch=None):
        ids, mask = inputs["input_ids"], inputs["attention_mask"].bool()
        record["batches"].append({
            "epoch": int(self.state.epoch + 1e-6),
            "rows": [row[keep].tolist() for row, keep in zip(ids, mask)],
            "chunks": chunk_count(ids, self.args.max_tokens_per_chunk),
        })
        return step(self, model, inputs, num_items_in_batch)

    SeqVAETrainer.training_step = training_step


def chunk_count(ids, budget: int) -> int:
    return 1 if not budget or ids.numel() <= budget else min(ids.size(0), -(-ids.numel() // budget))


def main() -> None:
    settings = json.loads(sys.argv[1])
    rank = int(os.environ["RANK"])
    overrides = {**settings["overrides"], **settings.get("rank_overrides", {}).get(str(rank), {})}
    record = {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"]), "batches": []}
    record_batches(record)
    metrics = train_and_evaluate(None, overrides, settings["output_dir"], resume=settings.get("resume", False))
    record["metrics"] = metrics
    Path(settings["record_dir"], f"rank{rank}.json").write_text(json.dumps(record, default=str))


if __name__ == "__main__":
    main()
