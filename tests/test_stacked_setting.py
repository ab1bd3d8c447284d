"""A stacked job's setting (pipeline/sweeps/stacked.py `setting_of`): its data is the
`LinearData` that `contracts.build_piece` builds from the same node, a node it cannot call
plainly fails in build_piece's words, and its starting values are its nodes' values, an
optimizer's absent ones at their defaults."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.contracts import ContractError, build_piece
from pipeline.sweeps.stacked import linear_data, setting_of


def job(optimizer: dict, **data) -> OmegaConf:
    """A job's config as a sweep composes it: struct, the data's seed interpolated."""
    cfg = OmegaConf.create(
        {
            "seed": 7,
            "data": {"_target_": "pipeline.data.LinearData", "seed": "${seed}", **data},
            "model": {"_target_": "pipeline.models.LinearModel", "k_init": 0.25},
            "optimizer": optimizer,
        }
    )
    OmegaConf.set_struct(cfg, True)
    return cfg


SGD = {"_target_": "pipeline.optimizers.SGD", "learning_rate": 0.1}


def test_the_data_is_what_build_piece_builds_from_the_node():
    cfg = job(SGD, noise_std=0.5, n_train=13, noise_draw="independent")
    assert linear_data(cfg.data) == build_piece(cfg.data, "data")
    assert linear_data(cfg.data).seed == 7


def test_a_node_it_cannot_call_plainly_fails_in_build_pieces_words():
    cfg = job(SGD, noise_std={"_target_": "pipeline.data.LinearData"})
    with pytest.raises(ContractError) as expected:
        build_piece(cfg.data, "data")
    with pytest.raises(ContractError) as made:
        linear_data(cfg.data)
    assert str(made.value) == str(expected.value)


def test_starting_values_are_the_nodes_and_an_optimizers_absent_ones_their_defaults():
    sgd, _ = setting_of(job(SGD))
    assert (sgd.k_init, sgd.learning_rate) == (0.25, 0.1)
    assert (sgd.beta1, sgd.beta2, sgd.epsilon) == (0.9, 0.999, 1e-7)
    adam = {"_target_": "pipeline.optimizers.Adam", "learning_rate": 0.01, "beta1": 0.5}
    made, k_true = setting_of(job(adam, k_true=3.0))
    assert (made.learning_rate, made.beta1, made.beta2) == (0.01, 0.5, 0.999)
    data = build_piece(job(adam, k_true=3.0).data, "data").generate()
    assert k_true == 3.0 and np.array_equal(made.x_train, data.x_train)
    assert np.array_equal(made.y_test, data.y_test)
