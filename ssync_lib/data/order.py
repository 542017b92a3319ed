"""The order in which training visits the data: a pure function of (seed, epoch, rank), so that a run
resumed at step ``s`` needs only ``s`` to continue exactly where it stopped.

Epoch ``e`` visits the training set in the permutation drawn by a ``torch.Generator`` seeded from
``(seed, e)``, in global batches of ``batch_size * world_size`` (last partial batch dropped); rank ``r``
takes the ``r``-th slice of ``batch_size`` items of each global batch. Step ``s`` is batch
``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``.
"""
from __future__ import annotations

import torch

from ssync_lib.config import TrainConfig


def epoch_permutation(num_items: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the training set in ``epoch``: a pure function of (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 2**32 + epoch)
    return torch.randperm(num_items, generator=gen)


def rank_batches(num_items: int, seed: int, epoch: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> list[list[int]]:
    """Dataset indices of every batch of ``epoch`` that ``rank`` processes: global batches of
    ``batch_size * world_size`` items (last partial one dropped), rank ``r`` taking the ``r``-th
    slice, so that the union over ranks of batch ``b`` is batch ``b`` of a 1-process run with
    ``batch_size * world_size``."""
    global_batch = batch_size * world_size
    order = epoch_permutation(num_items, seed, epoch).tolist()
    return [order[b * global_batch + rank * batch_size: b * global_batch + (rank + 1) * batch_size]
            for b in range(num_items // global_batch)]


def epoch_loader(dataset, tcfg: TrainConfig, num_workers: int, epoch: int, first_batch: int, rank: int,
                 world_size: int, pin_memory: bool) -> torch.utils.data.DataLoader:
    """DataLoader over batches ``first_batch, ...`` of ``epoch`` for ``rank``. Its own seeded
    generator keeps the global torch RNG untouched (bit-exact resume)."""
    dataset.set_epoch(epoch)
    batches = rank_batches(len(dataset), tcfg.seed, epoch, tcfg.batch_size, rank, world_size)[first_batch:]
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers,
                                       pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(tcfg.seed * 2**32 + epoch))


def training_batches(dataset, tcfg: TrainConfig, num_workers: int, step: int, steps_per_epoch: int, rank: int,
                     world_size: int, pin_memory: bool):
    """``(epoch, batch)`` of every training step from ``step`` on, epoch after epoch, without end: the loop
    stops at ``max_steps``. Step ``s`` gets batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``."""
    epoch, first_batch = divmod(step, steps_per_epoch)
    while True:
        for batch in epoch_loader(dataset, tcfg, num_workers, epoch, first_batch, rank, world_size, pin_memory):
            yield epoch, batch
        epoch, first_batch = epoch + 1, 0
