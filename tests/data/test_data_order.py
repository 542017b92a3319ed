import torch

from ssync_lib.data.order import epoch_permutation, rank_batches


def test_data_order_is_a_function_of_seed_and_epoch():
    assert torch.equal(epoch_permutation(50, 0, 3), epoch_permutation(50, 0, 3))
    assert not torch.equal(epoch_permutation(50, 0, 3), epoch_permutation(50, 0, 4))
    assert not torch.equal(epoch_permutation(50, 0, 1), epoch_permutation(50, 1, 0))
    one = rank_batches(50, seed=0, epoch=2, batch_size=8)
    assert len(one) == 6 and all(len(b) == 8 for b in one)  # last partial batch dropped
    assert len({i for b in one for i in b}) == 48
    two = [rank_batches(50, seed=0, epoch=2, batch_size=4, rank=r, world_size=2) for r in range(2)]
    assert [a + b for a, b in zip(*two)] == one  # the ranks' slices make up the 1-process batch
