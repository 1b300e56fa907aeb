"""Training batches capped in feature rows (``task.data.max_batch_rows``): the cap holds for
every batch, every crystal is drawn once per epoch, the number of batches never changes, and
under DDP the processes split the batches without repeating a crystal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DistributedSampler, RandomSampler
from torch_geometric.loader import DataLoader

from matgnn.data import CrystalDataModule, Records
from matgnn.data.batching import CappedBatchSampler, feature_rows
from matgnn.data.samples import mp_sample_structures
from matgnn.data.stores import GraphStore
from matgnn.graphs import GraphConfig, build_graphs
from matgnn.graphs.cache import structures_fingerprint
from matgnn.outputs import ScalarOutput


@pytest.fixture(scope="module")
def alignn_graphs():
    ids, structures = mp_sample_structures(120)
    built = build_graphs(structures, GraphConfig.preset("alignn"), ids=ids, progress=False)
    return built.ids, built.graphs


def rows_of_batch(batch) -> int:
    return int(batch.num_nodes + batch.edge_index.size(1) + batch.lg_edge_index.size(1))


def test_feature_rows_count_atoms_bonds_and_angles(alignn_graphs):
    _, graphs = alignn_graphs
    graph = graphs[0]
    expected = graph.num_nodes + graph.edge_index.size(1) + graph.lg_edge_index.size(1)
    assert feature_rows(graph) == expected
    # a graph without a line graph counts atoms and bonds only
    graph = build_graphs(mp_sample_structures(1)[1], GraphConfig.preset("cgcnn"), progress=False)
    only = graph.graphs[0]
    assert feature_rows(only) == only.num_nodes + only.edge_index.size(1)


def test_every_batch_is_under_the_cap_and_every_crystal_drawn_once(alignn_graphs):
    ids, graphs = alignn_graphs
    rows = np.array([feature_rows(g) for g in graphs])
    cap = int(rows.max() * 2)  # tight: the uncapped batches of 16 would break it
    uncapped = [int(rows[i : i + 16].sum()) for i in range(0, len(rows), 16)]
    assert max(uncapped) > cap
    lengths = set()
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        sampler = CappedBatchSampler(
            RandomSampler(graphs, generator=generator), 16, False, rows, cap, names=ids
        )
        batches = list(sampler)
        assert len(batches) == len(sampler)
        lengths.add(len(batches))
        assert sorted(i for b in batches for i in b) == list(range(len(graphs)))
        assert all(rows[b].sum() <= cap for b in batches)
        # the collated batches (what the model sees) hold the same rows
        loader = DataLoader(graphs, batch_sampler=sampler)
        assert all(rows_of_batch(batch) <= cap for batch in loader)
    assert len(lengths) == 1  # the same number of batches every epoch (OneCycle's total)


def test_the_number_of_batches_follows_batch_size_when_the_cap_is_loose(alignn_graphs):
    _, graphs = alignn_graphs
    rows = np.array([feature_rows(g) for g in graphs])
    sampler = CappedBatchSampler(RandomSampler(graphs), 16, False, rows, int(rows.sum()))
    assert len(sampler) == -(-len(graphs) // 16)  # 16 crystals per batch on average
    # even in rows, not in crystals: a batch of small cells holds more of them
    loads = [int(rows[b].sum()) for b in sampler]
    assert max(loads) - min(loads) <= rows.max()


def test_ddp_processes_split_the_batches_without_repeats(alignn_graphs):
    _, graphs = alignn_graphs
    rows = np.array([feature_rows(g) for g in graphs])
    cap = int(rows.max() * 2)
    for epoch in (0, 1):
        seen, lengths = [], set()
        for rank in range(3):
            shares = DistributedSampler(graphs, num_replicas=3, rank=rank, shuffle=True, seed=7)
            shares.set_epoch(epoch)
            sampler = CappedBatchSampler(shares, 8, False, rows, cap)
            batches = list(sampler)
            lengths.add((len(sampler), len(batches)))
            assert all(rows[b].sum() <= cap for b in batches)
            seen.extend(i for b in batches for i in b)
        assert len(lengths) == 1 and next(iter(lengths))[0] == next(iter(lengths))[1]
        assert sorted(seen) == list(range(len(graphs)))  # every crystal once, none padded
    # another epoch, another order
    first = []
    for epoch in (0, 1):
        shares = DistributedSampler(graphs, num_replicas=3, rank=0, shuffle=True, seed=7)
        shares.set_epoch(epoch)
        first.append(list(CappedBatchSampler(shares, 8, False, rows, cap)))
    assert first[0] != first[1]


def test_ddp_packing_follows_the_order_torch_draws_for_the_seed_and_epoch(alignn_graphs):
    """Every process packs the one permutation that torch's DistributedSampler deals out for
    that seed and epoch: its ranks' shares, interleaved, give the order (padding cut off)."""
    _, graphs = alignn_graphs
    graphs = graphs[: len(graphs) - 1 if len(graphs) % 3 == 0 else len(graphs)]
    assert len(graphs) % 3  # torch pads the shares with repeats, which the order leaves out
    rows = np.array([feature_rows(g) for g in graphs])
    world, n = 3, len(graphs)
    for seed, epoch in ((7, 0), (7, 1), (8, 0)):
        shares = []
        for rank in range(world):
            torch_sampler = DistributedSampler(
                graphs, num_replicas=world, rank=rank, shuffle=True, seed=seed
            )
            torch_sampler.set_epoch(epoch)
            shares.append(list(torch_sampler))
        dealt = [shares[i % world][i // world] for i in range(world * len(shares[0]))][:n]
        orders = []
        for rank in range(world):
            torch_sampler = DistributedSampler(
                graphs, num_replicas=world, rank=rank, shuffle=True, seed=seed
            )
            torch_sampler.set_epoch(epoch)
            orders.append(
                CappedBatchSampler(torch_sampler, 8, False, rows, int(rows.sum()))._order()
            )
        assert orders == [dealt] * world and sorted(dealt) == list(range(n))
    unshuffled = DistributedSampler(graphs, num_replicas=world, rank=2, shuffle=False)
    assert CappedBatchSampler(unshuffled, 8, False, rows, int(rows.sum()))._order() == list(
        range(n)
    )


def test_lightning_puts_its_distributed_sampler_into_the_capped_one(alignn_graphs):
    """What Lightning does to a training loader under DDP: the loader made inside its
    argument-saving context, then re-created with a DistributedSampler."""
    from lightning.fabric.utilities.data import _replace_dunder_methods
    from lightning.pytorch.utilities.data import _is_dataloader_shuffled, _update_dataloader

    _, graphs = alignn_graphs
    rows = np.array([feature_rows(g) for g in graphs])
    with _replace_dunder_methods(torch.utils.data.DataLoader, "dataset"):
        with _replace_dunder_methods(BatchSampler):
            loader = DataLoader(
                graphs,
                batch_sampler=CappedBatchSampler(
                    RandomSampler(graphs), 8, False, rows, int(rows.max() * 2)
                ),
            )
    # what makes Lightning's sampler shuffle: the RandomSampler inside the batch sampler
    assert _is_dataloader_shuffled(loader)
    shares = DistributedSampler(graphs, num_replicas=2, rank=1, shuffle=True, seed=0)
    updated = _update_dataloader(loader, shares)
    capped = updated.batch_sampler
    assert isinstance(capped, CappedBatchSampler)
    assert (capped.world, capped.rank) == (2, 1)
    assert capped.sampler is shares
    assert sum(len(b) for b in capped) < len(graphs)  # its share, not all


def test_a_crystal_above_the_cap_or_a_cap_too_small_is_refused_in_words(alignn_graphs):
    ids, graphs = alignn_graphs
    rows = np.array([feature_rows(g) for g in graphs])
    largest = int(rows.argmax())
    with pytest.raises(ValueError, match=f"{ids[largest]} alone has {rows[largest]} feature rows"):
        CappedBatchSampler(RandomSampler(graphs), 8, False, rows, int(rows.max()) - 1, names=ids)
    with pytest.raises(ValueError, match="more than there are crystals"):
        CappedBatchSampler(RandomSampler(graphs), 8, False, rows, int(rows.max()))
    with pytest.raises(ValueError, match="drop_last"):
        CappedBatchSampler(RandomSampler(graphs), 8, True, rows, int(rows.sum()))
    n = len(graphs)
    with pytest.raises(ValueError, match=f"{n - 1} row counts for a data set of {n} crystals"):
        CappedBatchSampler(RandomSampler(graphs), 8, False, rows[:-1], int(rows.sum()))
    with pytest.raises(ValueError, match="every process needs a batch"):
        few = DistributedSampler(graphs[:2], num_replicas=3, rank=0)
        CappedBatchSampler(few, 8, False, rows[:2], int(rows.sum()))
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    with pytest.raises(TypeError, match="positions in another sampler"):
        wrapped = DistributedSamplerWrapper(RandomSampler(graphs), num_replicas=2, rank=0)
        CappedBatchSampler(wrapped, 8, False, rows, int(rows.sum()))
    with pytest.raises(ValueError, match="must be positive"):
        CrystalDataModule(lambda: None, GraphConfig.preset("alignn"), [], max_batch_rows=0)


def sample_records() -> Records:
    ids, structures = mp_sample_structures(80)
    # the number of atoms per cell: a property of the structure itself, no invented label
    targets = {"n": np.array([float(len(s)) for s in structures])}
    return Records(list(ids), structures, targets, name="sample80")


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_the_datamodule_caps_its_training_batches(store, tmp_path):
    def data_module(**cap) -> CrystalDataModule:
        data = CrystalDataModule(
            sample_records,
            GraphConfig.preset("alignn"),
            [ScalarOutput("n")],
            batch_size=16,
            cache_dir=tmp_path,
            store=store,
            **cap,
        )
        data.setup()
        return data

    plain = data_module()
    cap = 2 * max(feature_rows(g) for g in plain.subsets["train"])
    # the cap binds here: plain batches of 16 exceed it
    assert max(rows_of_batch(b) for b in plain.loader("train")) > cap
    data = data_module(max_batch_rows=cap)
    loader = data.train_dataloader()
    assert isinstance(loader.batch_sampler, CappedBatchSampler)
    batches = list(loader)
    assert len(batches) == len(loader)
    assert all(rows_of_batch(b) <= cap for b in batches)
    drawn = sorted(i for b in batches for i in b.sample_id)
    assert drawn == sorted(data.split_ids()["train"])


def test_the_store_counts_the_rows_of_the_graphs_it_holds(tmp_path):
    ids, structures = mp_sample_structures(30)
    for preset in ("alignn", "potnet", "cgcnn"):
        config = GraphConfig.preset(preset)
        store = GraphStore.at(tmp_path / preset, config, "sample").build(
            structures, ids, structures_fingerprint(structures, ids), shard_size=7, progress=False
        )
        expected = [feature_rows(store.read(i)) for i in range(len(store))]
        assert store.feature_rows().tolist() == expected
